DROP INDEX invites_expiry_idx;
ALTER TABLE invites DROP COLUMN expiry_announced_at;
