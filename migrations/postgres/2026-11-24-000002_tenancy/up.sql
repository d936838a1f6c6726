-- Tenancy: integrators' external ids per root account, closed sub-accounts, billing profiles.

ALTER TABLE memberships ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX memberships_external_id_idx ON memberships (root_account_id, external_id);

ALTER TABLE accounts ADD COLUMN closed_at TIMESTAMP;

-- one per root account; only `account.billing` may read or change it
CREATE TABLE billing_profiles (
    account_id        TEXT PRIMARY KEY REFERENCES accounts (id),
    billing_email     TEXT,
    plan              TEXT NOT NULL,
    seat_price_cents  BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    -- ISO date (YYYY-MM-DD) the billing cycle is anchored on
    cycle_start       TEXT,
    updated_at        TIMESTAMP NOT NULL
);
