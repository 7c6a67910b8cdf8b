-- taskyard schema 16 (sqlite): finish hooks.
-- A task's end queues its hooks in the same transaction as the end (the outbox):
-- a hook is never lost to a crash between the end and its delivery. Servers turn
-- outbox rows into hook tasks (queue _hooks) and deliver webhooks.
ALTER TABLE tasks ADD COLUMN on_finish TEXT;        -- JSON argv of the task's own hook; '[]': none
ALTER TABLE tasks ADD COLUMN hook_for INTEGER;      -- a hook run: the task it reports on...
ALTER TABLE tasks ADD COLUMN hook_attempt INTEGER;  -- ...and which of its attempts
CREATE INDEX tasks_hook_for ON tasks (hook_for) WHERE hook_for IS NOT NULL;
ALTER TABLE queues ADD COLUMN on_finish TEXT;       -- JSON argv; '[]': none (not the server's)
ALTER TABLE queues ADD COLUMN on_finish_url TEXT;   -- '': none (not the server's)
CREATE TABLE hook_defaults (                        -- the servers' on_finish settings
    kind  TEXT PRIMARY KEY,                         -- command | url
    value TEXT NOT NULL
);
CREATE TABLE hook_outbox (
    id         INTEGER PRIMARY KEY,
    task_id    INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    kind       TEXT    NOT NULL,                    -- command | url
    target     TEXT    NOT NULL,                    -- JSON argv, or the URL
    created_at REAL    NOT NULL,
    next_at    REAL    NOT NULL,                    -- due (a webhook's retry, or its lease)
    tries      INTEGER NOT NULL DEFAULT 0,
    holder     TEXT,                                -- the server delivering it now
    last_error TEXT
);
CREATE INDEX hook_outbox_due ON hook_outbox (next_at);
CREATE TRIGGER tasks_finish_hooks AFTER UPDATE OF status ON tasks
WHEN NEW.status IN ('succeeded', 'failed', 'stopped')
     AND OLD.status NOT IN ('succeeded', 'failed', 'stopped') AND NEW.hook_for IS NULL
BEGIN
    INSERT INTO hook_outbox (task_id, attempt, kind, target, created_at, next_at)
    SELECT NEW.id, NEW.epoch, 'command', t, NEW.changed_at, NEW.changed_at
    FROM (SELECT COALESCE(NEW.on_finish,
                          (SELECT on_finish FROM queues WHERE name = NEW.queue),
                          (SELECT value FROM hook_defaults WHERE kind = 'command')) AS t)
    WHERE t IS NOT NULL AND t <> '[]';
    INSERT INTO hook_outbox (task_id, attempt, kind, target, created_at, next_at)
    SELECT NEW.id, NEW.epoch, 'url', t, NEW.changed_at, NEW.changed_at
    FROM (SELECT COALESCE((SELECT on_finish_url FROM queues WHERE name = NEW.queue),
                          (SELECT value FROM hook_defaults WHERE kind = 'url')) AS t)
    WHERE t IS NOT NULL AND t <> '';
END;
-- a failed attempt that is retried (failed -> scheduled in the same transaction) did
-- not end the task: its hooks are taken back
CREATE TRIGGER tasks_retry_unhooks AFTER UPDATE OF status ON tasks
WHEN OLD.status = 'failed' AND NEW.status = 'scheduled'
BEGIN
    DELETE FROM hook_outbox WHERE task_id = NEW.id AND attempt = NEW.epoch;
END;
