-- A member list pages by (organization, user id): one index serves the filter, the order and
-- the cursor, so a page reads about `limit` rows whatever the organization's size.
DROP INDEX memberships_root_idx;
CREATE INDEX memberships_root_user_idx ON memberships (root_account_id, user_id);

-- An account's notification log, oldest first (webhook deliveries have their own index).
CREATE INDEX notifications_account_idx ON notifications (account_id, id) WHERE webhook_endpoint_id IS NULL;
