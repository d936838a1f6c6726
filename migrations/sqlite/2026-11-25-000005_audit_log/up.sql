-- The audit log is append-only (R13): the database itself refuses to change or remove an
-- event, whatever the code does. (audit_events_account_idx on (account_id, id), from the
-- first migration, already serves each organization's list newest first.)

-- Lists narrowed to one target (and the tests' lookups by target) page by id within it.
CREATE INDEX audit_events_target_idx ON audit_events (target_id, id);

CREATE TRIGGER audit_events_no_update
BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: events cannot be updated');
END;

CREATE TRIGGER audit_events_no_delete
BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: events cannot be deleted');
END;
