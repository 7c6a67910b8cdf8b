-- taskyard schema 16 (postgres): finish hooks (see the sqlite migration for the design).
ALTER TABLE tasks ADD COLUMN on_finish text;
ALTER TABLE tasks ADD COLUMN hook_for bigint;
ALTER TABLE tasks ADD COLUMN hook_attempt bigint;
CREATE INDEX tasks_hook_for ON tasks (hook_for) WHERE hook_for IS NOT NULL;
ALTER TABLE queues ADD COLUMN on_finish text;
ALTER TABLE queues ADD COLUMN on_finish_url text;
CREATE TABLE hook_defaults (
    kind  text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE hook_outbox (
    id         bigserial PRIMARY KEY,
    task_id    bigint           NOT NULL,
    attempt    bigint           NOT NULL,
    kind       text             NOT NULL,
    target     text             NOT NULL,
    created_at double precision NOT NULL,
    next_at    double precision NOT NULL,
    tries      integer          NOT NULL DEFAULT 0,
    holder     text,
    last_error text
);
CREATE INDEX hook_outbox_due ON hook_outbox (next_at);
CREATE FUNCTION taskyard_finish_hooks() RETURNS trigger LANGUAGE plpgsql AS $$
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
    argv := COALESCE(NEW.on_finish, (SELECT on_finish FROM queues WHERE name = NEW.queue),
                     (SELECT value FROM hook_defaults WHERE kind = 'command'));
    url := COALESCE((SELECT on_finish_url FROM queues WHERE name = NEW.queue),
                    (SELECT value FROM hook_defaults WHERE kind = 'url'));
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
CREATE TRIGGER tasks_finish_hooks AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                      AND NEW.status IN ('succeeded', 'failed', 'stopped', 'scheduled'))
    EXECUTE FUNCTION taskyard_finish_hooks();
