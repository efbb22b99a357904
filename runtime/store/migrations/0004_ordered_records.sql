-- Actions can see the order of an object's keys (Object.keys, JSON.stringify),
-- and jsonb does not keep it: it sorts them. Replay must feed an action the
-- event exactly as it saw it, and a flow resumed at /continue must see its event
-- as it was before the redirect; so execution records and suspended flows keep
-- their JSON text as written.
ALTER TABLE executions
    ALTER COLUMN results TYPE json USING results::json,
    ALTER COLUMN event TYPE json USING event::json;
ALTER TABLE flow_transactions ALTER COLUMN flow TYPE json USING flow::json;
