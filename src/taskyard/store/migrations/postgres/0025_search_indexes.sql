-- taskyard schema 25 (postgres): indexes for `ls --meta` and `ls --text`, which read the
-- newest 100,000 tasks before (and never found an older match). Written when a task is
-- inserted, its metadata (or name, argv, function) changes, or it is deleted: never on a
-- status change, so claims and ends cost what they did.

-- Every scalar metadata value (strings, numbers, booleans; not inside lists) by its
-- dotted key path (a.b; a key holding a dot cannot be asked for and is left out), as the
-- filters compare it (meta::jsonb #>> path), its first 100 characters: `--meta
-- KEY=VALUE` reads (key, value) off the primary key, newest task first, and checks the
-- task's metadata exactly.
CREATE TABLE task_meta (
    key     text   NOT NULL,
    value   text   NOT NULL,
    task_id bigint NOT NULL,
    PRIMARY KEY (key, value, task_id)
);

CREATE FUNCTION taskyard_meta_values(doc text) RETURNS TABLE (key text, value text)
LANGUAGE sql IMMUTABLE AS $$
    WITH RECURSIVE walk (key, value) AS (
        SELECT e.key, e.value FROM jsonb_each(doc::jsonb) e WHERE strpos(e.key, '.') = 0
        UNION ALL
        SELECT w.key || '.' || e.key, e.value
        FROM walk w, jsonb_each(w.value) e
        WHERE jsonb_typeof(w.value) = 'object' AND strpos(e.key, '.') = 0
    )
    SELECT key, left(value #>> '{}', 100) FROM walk
    WHERE jsonb_typeof(value) IN ('string', 'number', 'boolean')
$$;

INSERT INTO task_meta (key, value, task_id)
    SELECT m.key, m.value, t.id FROM tasks t, taskyard_meta_values(t.meta) m
    WHERE t.meta <> '{}' ON CONFLICT DO NOTHING;

-- On insert the top-level keys are read in the trigger itself (its plan is kept: a call
-- of the SQL function above is planned anew each time, 40 us a task), the walk only
-- when the text holds an object inside.
CREATE FUNCTION taskyard_task_meta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.meta <> '{}' THEN
        DELETE FROM task_meta m USING taskyard_meta_values(OLD.meta) o
        WHERE m.key = o.key AND m.value = o.value AND m.task_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.meta <> '{}' THEN
        INSERT INTO task_meta (key, value, task_id)
            SELECT e.key, left(e.value #>> '{}', 100), NEW.id
            FROM jsonb_each(NEW.meta::jsonb) e
            WHERE jsonb_typeof(e.value) IN ('string', 'number', 'boolean')
              AND strpos(e.key, '.') = 0;
        IF strpos(substr(NEW.meta, 2), '{') > 0 THEN
            INSERT INTO task_meta (key, value, task_id)
                SELECT key, value, NEW.id FROM taskyard_meta_values(NEW.meta)
                WHERE strpos(key, '.') > 0;
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_meta_insert AFTER INSERT ON tasks FOR EACH ROW
    WHEN (NEW.meta <> '{}') EXECUTE FUNCTION taskyard_task_meta();
CREATE TRIGGER tasks_meta_update AFTER UPDATE OF meta ON tasks FOR EACH ROW
    WHEN (OLD.meta IS DISTINCT FROM NEW.meta) EXECUTE FUNCTION taskyard_task_meta();
CREATE TRIGGER tasks_meta_delete AFTER DELETE ON tasks FOR EACH ROW
    WHEN (OLD.meta <> '{}') EXECUTE FUNCTION taskyard_task_meta();

-- The text `--text WORD` looks in (name, argv and function, as the filter joins them),
-- as trigrams: pg_trgm's GIN index serves ILIKE '%word%' for a word of 3 characters or
-- more. Metadata is left to --meta. pg_trgm is a trusted extension (PostgreSQL 13+), made in schema
-- public where the role may; where it cannot be made, --text reads every task.
DO $$
DECLARE
    trgm text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'taskyard: no pg_trgm (%): ls --text reads every task', SQLERRM;
    END;
    SELECT n.nspname INTO trgm FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF trgm IS NOT NULL THEN
        EXECUTE format('CREATE INDEX tasks_text ON tasks USING gin ((COALESCE(name, '''')'
                       ' || '' '' || argv || '' '' || COALESCE(function, '''')) %I.gin_trgm_ops)',
                       trgm);
    END IF;
END $$;
