-- taskyard schema 17 (sqlite): retention. Finished tasks older than an age, or beyond
-- the newest N of their queue, are pruned; a task submitted with --keep never is.
ALTER TABLE tasks ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN retain REAL;           -- seconds; NULL: the server's setting
ALTER TABLE queues ADD COLUMN retain_count INTEGER;  -- NULL: the server's; 0: no count limit
CREATE INDEX tasks_finished ON tasks (queue, finished_at)
    WHERE status IN ('succeeded', 'failed', 'stopped');
CREATE INDEX hook_outbox_task ON hook_outbox (task_id);
