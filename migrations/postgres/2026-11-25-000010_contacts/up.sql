-- Contacts (R12): people in an account node who cannot log in. Each may be assigned to a
-- user of the same organization and subscribe to notices (stored as the sorted, comma-
-- separated names of the subscriptions, e.g. 'invoices,service_notices'; '' for none).
CREATE TABLE contacts (
    id                TEXT PRIMARY KEY,
    root_account_id   TEXT NOT NULL REFERENCES accounts (id),
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    name              TEXT NOT NULL,
    email             TEXT,
    phone             TEXT,
    company           TEXT,
    subscriptions     TEXT NOT NULL DEFAULT '',
    assigned_user_id  TEXT REFERENCES users (id),
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
-- Lists page by id (time-ordered) within an organization, or within one assignee's contacts
-- (the view of a `contacts.read_assigned` caller, the reassign and the assignee filters).
CREATE INDEX contacts_account_idx ON contacts (root_account_id, id);
CREATE INDEX contacts_assignee_idx ON contacts (root_account_id, assigned_user_id, id);
-- Notices to contacts: each notification row records the contact it was for. No foreign key:
-- the row is history and outlives the contact (its address is in recipient_email).
ALTER TABLE notifications ADD COLUMN contact_id TEXT;
