-- The seat ledger (R10): when each membership started and stopped being billable (active,
-- its user active, holding a role other than guest). One row per billable period; an open
-- period has no end. Rows are history: they name the membership without a foreign key, so
-- removing a membership keeps its periods.
CREATE TABLE seat_ledger (
    id               TEXT PRIMARY KEY,
    root_account_id  TEXT NOT NULL REFERENCES accounts (id),
    membership_id    TEXT NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id),
    started_at       TIMESTAMP NOT NULL,
    ended_at         TIMESTAMP,
    end_reason       TEXT
);
-- At most one open period per membership, even under concurrent writers.
CREATE UNIQUE INDEX seat_ledger_open_idx ON seat_ledger (membership_id) WHERE ended_at IS NULL;
CREATE INDEX seat_ledger_account_idx ON seat_ledger (root_account_id, id);
CREATE INDEX seat_ledger_membership_idx ON seat_ledger (membership_id, started_at);

-- Memberships billable when this migration runs open a period from their creation.
INSERT INTO seat_ledger (id, root_account_id, membership_id, user_id, started_at)
SELECT 'sea_' || substr(m.id, 5), m.root_account_id, m.id, m.user_id, m.created_at
FROM memberships m
JOIN users u ON u.id = m.user_id
WHERE m.status = 'active'
  AND u.status = 'active'
  AND EXISTS (
      SELECT 1 FROM membership_roles mr JOIN roles r ON r.id = mr.role_id
      WHERE mr.membership_id = m.id AND (r.builtin_key IS NULL OR r.builtin_key <> 'guest')
  );
