-- no transaction
-- The sweep deletes refresh tokens that expired over an hour ago; without an
-- index on their expiry it read the whole table every minute. Built without
-- blocking writes (CONCURRENTLY); an attempt cut short leaves an unusable
-- index, dropped and built again when the migration runs again.
DROP INDEX CONCURRENTLY IF EXISTS refresh_tokens_expiry;
CREATE INDEX CONCURRENTLY refresh_tokens_expiry ON refresh_tokens (expires_at);
