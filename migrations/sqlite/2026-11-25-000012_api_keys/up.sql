-- API keys: machine credentials of an organization (root account). A key holds roles like a
-- member does (never more than its creator held, R4), acts as itself (never as a person),
-- and is stored only as a SHA-256 digest of its secret: the secret is shown once.
CREATE TABLE api_keys (
    id                    TEXT PRIMARY KEY,
    root_account_id       TEXT NOT NULL REFERENCES accounts (id),
    name                  TEXT NOT NULL,
    -- The first characters of the secret (`stk_` and a few more), to tell keys apart.
    secret_prefix         TEXT NOT NULL,
    -- Hex SHA-256 of the whole secret; the secret itself is never stored.
    secret_hash           TEXT NOT NULL UNIQUE,
    -- When the current secret was issued: access tokens exchanged before it die with the
    -- previous secret.
    secret_issued_at      TIMESTAMP NOT NULL,
    -- After a rotation with a grace period, the previous secret keeps working until then.
    previous_secret_hash  TEXT UNIQUE,
    previous_valid_until  TIMESTAMP,
    created_by            TEXT NOT NULL REFERENCES users (id),
    created_at            TIMESTAMP NOT NULL,
    expires_at            TIMESTAMP,
    last_used_at          TIMESTAMP,
    revoked_at            TIMESTAMP,
    revoked_by            TEXT REFERENCES users (id),
    -- A create sent with an Idempotency-Key: a retry within 24 hours finds this key again
    -- (and gets a fresh secret, since the secret itself is never kept).
    idempotency_key       TEXT,
    request_fingerprint   TEXT
);
CREATE INDEX api_keys_account_idx ON api_keys (root_account_id, id);
CREATE UNIQUE INDEX api_keys_idempotency_idx ON api_keys (root_account_id, created_by, idempotency_key);

CREATE TABLE api_key_roles (
    api_key_id  TEXT NOT NULL REFERENCES api_keys (id),
    role_id     TEXT NOT NULL REFERENCES roles (id),
    PRIMARY KEY (api_key_id, role_id)
);
CREATE INDEX api_key_roles_role_idx ON api_key_roles (role_id);

-- A change made with an API key names the key as its real actor.
ALTER TABLE audit_events ADD COLUMN actor_api_key_id TEXT;
CREATE INDEX audit_events_api_key_idx ON audit_events (account_id, actor_api_key_id, id);
