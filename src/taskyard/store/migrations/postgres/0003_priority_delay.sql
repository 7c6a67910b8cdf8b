-- taskyard schema 3 (PostgreSQL): priorities and delayed starts.
ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;  -- higher runs first
ALTER TABLE tasks ADD COLUMN run_at double precision;  -- a scheduled task is queued then
-- The claim reads queued tasks in (priority DESC, id) order straight from this index.
DROP INDEX tasks_status;
CREATE INDEX tasks_status ON tasks (status, priority DESC, id);
CREATE INDEX tasks_due ON tasks (run_at) WHERE status = 'scheduled';
