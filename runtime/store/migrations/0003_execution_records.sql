-- Execution records keep what is needed to replay them: the event the flow
-- started with (never its secrets), beside each action's trace; and they are
-- listed and streamed by time.
ALTER TABLE executions ADD COLUMN event jsonb;
CREATE INDEX executions_updated ON executions (tenant_id, updated_at);
