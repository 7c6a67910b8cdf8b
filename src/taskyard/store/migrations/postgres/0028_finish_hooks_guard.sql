-- taskyard schema 28 (postgres): the finish-hook function reads the task's queue once
-- (its on_finish and on_finish_url together) and the servers' defaults only for what the
-- task and its queue leave open; what it queues is the same. (SQLite's trigger got a
-- guard that skips both lookups when no hook can apply: half of a finish's cost there.)
CREATE OR REPLACE FUNCTION taskyard_finish_hooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    argv text;
    url text;
BEGIN
    IF OLD.status = 'failed' AND NEW.status = 'scheduled' THEN  -- retried: not an end
        DELETE FROM hook_outbox WHERE task_id = NEW.id AND attempt = NEW.epoch;
        RETURN NULL;
    END IF;
    IF NEW.status NOT IN ('succeeded', 'failed', 'stopped')
       OR OLD.status IN ('succeeded', 'failed', 'stopped') OR NEW.hook_for IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT on_finish, on_finish_url INTO argv, url FROM queues WHERE name = NEW.queue;
    argv := COALESCE(NEW.on_finish, argv);
    IF argv IS NULL THEN
        argv := (SELECT value FROM hook_defaults WHERE kind = 'command');
    END IF;
    IF url IS NULL THEN
        url := (SELECT value FROM hook_defaults WHERE kind = 'url');
    END IF;
    IF argv IS NOT NULL AND argv <> '[]' THEN
        INSERT INTO hook_outbox (task_id, attempt, kind, target, created_at, next_at)
        VALUES (NEW.id, NEW.epoch, 'command', argv, NEW.changed_at, NEW.changed_at);
    END IF;
    IF url IS NOT NULL AND url <> '' THEN
        INSERT INTO hook_outbox (task_id, attempt, kind, target, created_at, next_at)
        VALUES (NEW.id, NEW.epoch, 'url', url, NEW.changed_at, NEW.changed_at);
    END IF;
    RETURN NULL;
END;
$$;
