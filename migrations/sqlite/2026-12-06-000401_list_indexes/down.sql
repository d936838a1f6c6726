DROP INDEX notifications_account_idx;
DROP INDEX memberships_root_user_idx;
CREATE INDEX memberships_root_idx ON memberships (root_account_id);
