ALTER TABLE notifications DROP COLUMN contact_id;
DROP TABLE contacts;
