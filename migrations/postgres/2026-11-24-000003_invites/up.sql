-- Invitations (R6). The token is stored only as a hash; resend and copy-link rotate it.
-- 'expired' is never stored: a pending invite past expires_at reads as expired.
CREATE TABLE invites (
    id                TEXT PRIMARY KEY,
    root_account_id   TEXT NOT NULL REFERENCES accounts (id),
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    email             TEXT NOT NULL,
    email_normalized  TEXT NOT NULL,
    invited_by        TEXT NOT NULL REFERENCES users (id),
    token_hash        TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL,
    send_email        BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at        TIMESTAMP NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    accepted_at       TIMESTAMP,
    accepted_user_id  TEXT REFERENCES users (id),
    revoked_at        TIMESTAMP,
    revoked_by        TEXT REFERENCES users (id)
);
CREATE INDEX invites_root_idx ON invites (root_account_id, id);
CREATE INDEX invites_email_idx ON invites (root_account_id, email_normalized);

CREATE TABLE invite_roles (
    invite_id TEXT NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    role_id   TEXT NOT NULL REFERENCES roles (id),
    PRIMARY KEY (invite_id, role_id)
);
CREATE INDEX invite_roles_role_idx ON invite_roles (role_id);
