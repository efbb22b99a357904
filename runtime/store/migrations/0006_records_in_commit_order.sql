-- The live stream follows execution records in the order their transactions
-- end, which no clock gives: a record stamped earlier can be committed later
-- (a batch written behind the answer, another server's transaction). Each
-- record keeps the id of the transaction that last wrote it; a reader asks
-- from the oldest transaction still running, below which every record is in.
-- Records written before this migration have none and are never streamed
-- (the stream shows what is recorded after it opens). Adding the column and
-- its default rewrites nothing; its index comes in 0009, built concurrently.
ALTER TABLE executions ADD COLUMN written_in xid8;
ALTER TABLE executions ALTER COLUMN written_in SET DEFAULT pg_current_xact_id();
