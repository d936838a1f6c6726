-- Identity core: tenants, people, roles, sessions, the outbox and the audit trail.
-- Ids are opaque prefixed TEXT; times are UTC TIMESTAMP; enums are TEXT.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    root_id     TEXT NOT NULL,
    parent_id   TEXT REFERENCES accounts (id),
    -- materialized path from the root to this node, e.g. '/acc_a/acc_b/'
    path        TEXT NOT NULL,
    depth       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    address     TEXT,
    phone       TEXT,
    status      TEXT NOT NULL,
    -- bumped by every write transaction that must serialize per tenant (R3, R6)
    lock_version BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX accounts_root_idx ON accounts (root_id);
CREATE INDEX accounts_parent_idx ON accounts (parent_id);
CREATE INDEX accounts_path_idx ON accounts (path);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    email                 TEXT NOT NULL,
    email_normalized      TEXT NOT NULL UNIQUE,
    username              TEXT,
    username_normalized   TEXT UNIQUE,
    first_name            TEXT NOT NULL,
    last_name             TEXT NOT NULL,
    phone                 TEXT,
    password_hash         TEXT,
    must_change_password  BOOLEAN NOT NULL DEFAULT 0,
    status                TEXT NOT NULL,
    default_landing_page  TEXT,
    default_contact_tab   TEXT,
    show_calendar         BOOLEAN NOT NULL DEFAULT 1,
    daily_email_reminders BOOLEAN NOT NULL DEFAULT 0,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    archived_at           TIMESTAMP
);

CREATE TABLE roles (
    id              TEXT PRIMARY KEY,
    root_account_id TEXT NOT NULL REFERENCES accounts (id),
    -- the built-in role this row stands for (owner, admin, ...); NULL for a custom role
    builtin_key     TEXT,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    UNIQUE (root_account_id, name)
);

-- permissions of custom roles; built-in roles take theirs from the code's catalog
CREATE TABLE role_permissions (
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE memberships (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    root_account_id TEXT NOT NULL REFERENCES accounts (id),
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    status          TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    UNIQUE (user_id, root_account_id)
);
CREATE INDEX memberships_root_idx ON memberships (root_account_id);

CREATE TABLE membership_roles (
    membership_id TEXT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    role_id       TEXT NOT NULL REFERENCES roles (id),
    PRIMARY KEY (membership_id, role_id)
);
CREATE INDEX membership_roles_role_idx ON membership_roles (role_id);

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id),
    -- root account the session is scoped to; NULL until the user picks one (R5)
    account_id        TEXT REFERENCES accounts (id),
    -- the real actor when the session acts as another user (R8); NULL otherwise
    actor_user_id     TEXT REFERENCES users (id),
    delegation        TEXT,
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    revoked_at        TIMESTAMP,
    revoked_reason    TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE password_reset_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);

-- the notification outbox: written in the cause's transaction, delivered at least once
CREATE TABLE notifications (
    id                   TEXT PRIMARY KEY,
    kind                 TEXT NOT NULL,
    account_id           TEXT,
    recipient_user_id    TEXT,
    recipient_email      TEXT NOT NULL,
    on_behalf_of_user_id TEXT,
    subject              TEXT NOT NULL,
    body                 TEXT NOT NULL,
    payload              TEXT NOT NULL,
    status               TEXT NOT NULL,
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      TIMESTAMP NOT NULL,
    locked_until         TIMESTAMP,
    last_error           TEXT,
    created_at           TIMESTAMP NOT NULL,
    delivered_at         TIMESTAMP
);
CREATE INDEX notifications_due_idx ON notifications (status, next_attempt_at);

-- append-only; no foreign keys so that the trail outlives what it speaks of
CREATE TABLE audit_events (
    id                TEXT PRIMARY KEY,
    occurred_at       TIMESTAMP NOT NULL,
    actor_user_id     TEXT,
    effective_user_id TEXT,
    account_id        TEXT,
    action            TEXT NOT NULL,
    target_type       TEXT,
    target_id         TEXT,
    request_id        TEXT,
    details           TEXT NOT NULL
);
CREATE INDEX audit_events_account_idx ON audit_events (account_id, id);
