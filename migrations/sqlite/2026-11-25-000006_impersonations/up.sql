-- Impersonation (R9): an actor with `users.impersonate` "logs in as" a user of the same
-- organization, for a bounded time, read-only unless full mode was asked for and allowed.
-- One row per impersonation session; ended and expired ones stay as history.
CREATE TABLE impersonations (
    id               TEXT PRIMARY KEY,
    root_account_id  TEXT NOT NULL REFERENCES accounts (id),
    actor_user_id    TEXT NOT NULL REFERENCES users (id),
    target_user_id   TEXT NOT NULL REFERENCES users (id),
    session_id       TEXT NOT NULL UNIQUE REFERENCES sessions (id),
    mode             TEXT NOT NULL,
    reason           TEXT NOT NULL,
    started_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    ended_at         TIMESTAMP,
    ended_by         TEXT REFERENCES users (id)
);
-- Lists are newest first by id (ids are time-ordered): per organization, per target
-- (GET /v1/me/impersonations) and per actor.
CREATE INDEX impersonations_account_idx ON impersonations (root_account_id, id);
CREATE INDEX impersonations_target_idx ON impersonations (target_user_id, id);
CREATE INDEX impersonations_actor_idx ON impersonations (actor_user_id, id);
