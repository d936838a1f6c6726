-- Idempotent retries: the first response to a POST carrying an Idempotency-Key, kept for
-- 24 hours per caller and key, so that a retry gets it again instead of a second change.
-- A row without a status is a request still being served.
CREATE TABLE idempotency_keys (
    scope          TEXT NOT NULL,
    idem_key       TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    status         INTEGER,
    content_type   TEXT,
    location       TEXT,
    body           TEXT,
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
