-- SCIM (RFC 7643): the identity provider's userName for a member, unique within the
-- organization regardless of case. A member without one answers to their email.
ALTER TABLE memberships ADD COLUMN scim_user_name TEXT;
CREATE UNIQUE INDEX memberships_scim_user_name_idx ON memberships (root_account_id, lower(scim_user_name));
-- The identity provider's id for a group (a role), as SCIM's externalId.
ALTER TABLE roles ADD COLUMN external_id TEXT;
