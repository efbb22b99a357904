-- no transaction
-- A session ends at its absolute expiry or when it has been idle too long,
-- whichever comes first; the sweep deletes it an hour after that. It used to
-- wait for the absolute expiry alone, keeping sessions that had gone idle
-- (most of them, when the idle timeout is days and the lifetime weeks).
DROP INDEX CONCURRENTLY IF EXISTS sessions_ended;
CREATE INDEX CONCURRENTLY sessions_ended ON sessions (least(expires_at, idle_expires_at));
DROP INDEX CONCURRENTLY IF EXISTS sessions_expiry;
