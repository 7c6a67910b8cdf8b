-- taskyard schema 9: Python function tasks and what code inside a task can do.
ALTER TABLE tasks ADD COLUMN function TEXT;  -- registered function name (argv is [] then)
ALTER TABLE tasks ADD COLUMN kwargs TEXT;    -- its JSON keyword arguments
ALTER TABLE tasks ADD COLUMN result TEXT;    -- JSON return value of the last attempt
ALTER TABLE tasks ADD COLUMN state TEXT;     -- last checkpoint (JSON), kept across attempts
ALTER TABLE tasks ADD COLUMN state_epoch INTEGER;  -- the attempt that wrote it
ALTER TABLE tasks ADD COLUMN config TEXT NOT NULL DEFAULT '{}';  -- live config (JSON object)
ALTER TABLE tasks ADD COLUMN config_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN stop_asked INTEGER NOT NULL DEFAULT 0;  -- graceful stop asked (epoch)
ALTER TABLE tasks ADD COLUMN steps TEXT;     -- multi-step status (JSON), written by the task

-- Custom signals operators send to a task; the task polls, acknowledges, clears them.
CREATE TABLE signals (
    id       INTEGER PRIMARY KEY,
    task_id  INTEGER NOT NULL,
    name     TEXT NOT NULL,
    data     TEXT,              -- JSON
    by       TEXT NOT NULL,
    sent_at  REAL NOT NULL,
    acked_at REAL  -- read and cleared by the task
);
CREATE INDEX signals_task ON signals (task_id, id);

-- Claim order: priority, then place in the queue. A task's place is its id until a
-- multi-step task gives its slot back: then it goes behind the tasks queued meanwhile.
ALTER TABLE tasks ADD COLUMN seq INTEGER;
DROP INDEX tasks_status;
CREATE INDEX tasks_status ON tasks (status, priority DESC, (COALESCE(seq, id)), id);
