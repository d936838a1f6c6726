-- Abuse throttling shared by every instance on this database: one row per limit (`bucket`,
-- e.g. `login.account`) and subject (a SHA-256 of the login identifier, address, email or
-- organization: no plain identifier is kept). A fixed window starts at the first counted
-- event and ends at `window_end`; past it the row counts from 1 again, and housekeeping
-- deletes rows whose window has ended.
CREATE TABLE rate_limits (
    bucket        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    hits          INTEGER NOT NULL,
    window_start  TIMESTAMP NOT NULL,
    window_end    TIMESTAMP NOT NULL,
    PRIMARY KEY (bucket, subject)
);
CREATE INDEX rate_limits_window_end_idx ON rate_limits (window_end);
