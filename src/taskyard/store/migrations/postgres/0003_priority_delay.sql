-- taskyard schema 3 (PostgreSQL): priorities and delayed starts.
ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;  -- higher runs first
ALTER TABLE tasks ADD COLUMN run_at double precision;  -- a scheduled task is queued then
CREATE INDEX tasks_claim ON tasks (priority DESC, id) WHERE status = 'queued';
CREATE INDEX tasks_due ON tasks (run_at) WHERE status = 'scheduled';
