-- taskyard schema 17 (postgres): retention (see the sqlite migration).
ALTER TABLE tasks ADD COLUMN keep integer NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN retain double precision;
ALTER TABLE queues ADD COLUMN retain_count integer;
CREATE INDEX tasks_finished ON tasks (queue, finished_at)
    WHERE status IN ('succeeded', 'failed', 'stopped');
CREATE INDEX hook_outbox_task ON hook_outbox (task_id);
