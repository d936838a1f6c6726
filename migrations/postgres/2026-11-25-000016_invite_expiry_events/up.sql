-- When an invitation's expiry was announced (the `invite.expired` event). A resent invitation
-- gets a later expiry, so it is announced again if it expires again.
ALTER TABLE invites ADD COLUMN expiry_announced_at TIMESTAMP;
CREATE INDEX invites_expiry_idx ON invites (status, expires_at);
