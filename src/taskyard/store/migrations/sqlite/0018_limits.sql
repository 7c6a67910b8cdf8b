-- taskyard schema 18 (sqlite): resource limits of a task and of a queue (--memory-limit ...).
ALTER TABLE tasks ADD COLUMN limits TEXT;   -- JSON {"memory": bytes, "cpu": s, "files": n, "procs": n}
ALTER TABLE queues ADD COLUMN limits TEXT;  -- the same; a task's own override its queue's
