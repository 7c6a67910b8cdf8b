-- taskyard schema 3 (SQLite): priorities and delayed starts.
ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;  -- higher runs first
ALTER TABLE tasks ADD COLUMN run_at REAL;  -- a scheduled task is queued at this time
CREATE INDEX tasks_claim ON tasks (priority DESC, id) WHERE status = 'queued';
CREATE INDEX tasks_due ON tasks (run_at) WHERE status = 'scheduled';
