ALTER TABLE roles DROP COLUMN external_id;
DROP INDEX memberships_scim_user_name_idx;
ALTER TABLE memberships DROP COLUMN scim_user_name;
