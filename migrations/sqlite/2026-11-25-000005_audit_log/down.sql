DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
DROP INDEX audit_events_target_idx;
