DROP INDEX audit_events_api_key_idx;
ALTER TABLE audit_events DROP COLUMN actor_api_key_id;
DROP TABLE api_key_roles;
DROP TABLE api_keys;
