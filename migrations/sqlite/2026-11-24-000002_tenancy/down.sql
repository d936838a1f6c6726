DROP TABLE billing_profiles;
DROP INDEX memberships_external_id_idx;
ALTER TABLE accounts DROP COLUMN closed_at;
ALTER TABLE memberships DROP COLUMN external_id;
