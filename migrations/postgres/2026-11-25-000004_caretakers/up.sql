-- Caretakers (R7): someone manages a user's account while they are away. One live
-- assignment per managed user and organization; ended assignments stay as history.
CREATE TABLE caretaker_assignments (
    id                TEXT PRIMARY KEY,
    root_account_id   TEXT NOT NULL REFERENCES accounts (id),
    managed_user_id   TEXT NOT NULL REFERENCES users (id),
    caretaker_user_id TEXT NOT NULL REFERENCES users (id),
    assigned_by       TEXT NOT NULL REFERENCES users (id),
    assigned_at       TIMESTAMP NOT NULL,
    removed_at        TIMESTAMP,
    removed_by        TEXT REFERENCES users (id)
);
CREATE UNIQUE INDEX caretaker_assignments_live_idx
    ON caretaker_assignments (root_account_id, managed_user_id) WHERE removed_at IS NULL;
CREATE INDEX caretaker_assignments_caretaker_idx
    ON caretaker_assignments (caretaker_user_id, removed_at);
