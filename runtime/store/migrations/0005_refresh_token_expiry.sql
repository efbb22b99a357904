-- The sweep deletes refresh tokens that expired over an hour ago; without an
-- index on their expiry it read the whole table every minute.
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
