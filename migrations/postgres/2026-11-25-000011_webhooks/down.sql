DROP INDEX notifications_webhook_idx;
ALTER TABLE notifications DROP COLUMN last_response_code;
ALTER TABLE notifications DROP COLUMN webhook_endpoint_id;
DROP TABLE webhook_endpoints;
