-- no transaction
-- The indexes of 0006 (the live stream reads a tenant's records by the
-- transaction that wrote them) and 0008 (a reused refresh token revokes its
-- family), built without blocking writes on tables that may be large.
DROP INDEX CONCURRENTLY IF EXISTS executions_written_in;
CREATE INDEX CONCURRENTLY executions_written_in ON executions (tenant_id, written_in);
DROP INDEX CONCURRENTLY IF EXISTS refresh_tokens_family;
CREATE INDEX CONCURRENTLY refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
