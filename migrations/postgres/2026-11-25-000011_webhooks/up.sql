-- Event webhooks: endpoints an organization registers, and their deliveries, which are
-- rows of the notification outbox naming the endpoint (written in the transaction of the
-- event's cause, delivered at least once like every notification).
CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY,
    root_account_id  TEXT NOT NULL REFERENCES accounts (id),
    url              TEXT NOT NULL,
    -- Event types, comma-separated, or '*' for all.
    event_types      TEXT NOT NULL,
    -- The Standard Webhooks signing secret (whsec_…), kept to sign every delivery.
    secret           TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    created_by       TEXT NOT NULL REFERENCES users (id),
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_account_idx ON webhook_endpoints (root_account_id, id);
ALTER TABLE notifications ADD COLUMN webhook_endpoint_id TEXT;
ALTER TABLE notifications ADD COLUMN last_response_code INTEGER;
CREATE INDEX notifications_webhook_idx ON notifications (webhook_endpoint_id, id);
