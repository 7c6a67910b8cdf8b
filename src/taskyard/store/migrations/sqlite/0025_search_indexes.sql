-- taskyard schema 25 (sqlite): indexes for `ls --meta` and `ls --text`, which read the
-- newest 100,000 tasks before (and never found an older match). Both are written by
-- triggers when a task is inserted, its metadata (or name, argv, function) changes, or
-- it is deleted: never on a status change, so claims and ends cost what they did.

-- Every scalar metadata value (strings, numbers, booleans; not inside lists) by its key
-- path as json_tree writes it ($.a.b, $."c-d"), as the filters compare it (true, 3,
-- abc), its first 100 characters: `--meta KEY=VALUE` reads (key, value) off the primary
-- key, newest task first, and checks the task's metadata exactly.
CREATE TABLE task_meta (
    key     TEXT    NOT NULL,
    value   TEXT    NOT NULL,
    task_id INTEGER NOT NULL,
    PRIMARY KEY (key, value, task_id)
) WITHOUT ROWID;

INSERT OR IGNORE INTO task_meta (key, value, task_id)
    SELECT j.fullkey, substr(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                             ELSE CAST(j.atom AS TEXT) END, 1, 100), t.id
    FROM tasks t, json_tree(t.meta) j
    WHERE t.meta <> '{}' AND j.atom IS NOT NULL AND typeof(j.key) = 'text';

-- A scalar's atom is never NULL (true and false: 1 and 0), a null's, a list's or an
-- object's always is: `atom IS NOT NULL` picks the scalars. (`type IN (...)` cost a
-- submit 1.7 us more: an IN list is built anew at each run of the trigger.) On insert
-- the top-level keys come from json_each; json_tree walks the rest in a trigger of its
-- own, whose WHEN skips it unless the text holds an object inside.
CREATE TRIGGER tasks_meta_insert AFTER INSERT ON tasks WHEN NEW.meta <> '{}' BEGIN
    INSERT OR IGNORE INTO task_meta (key, value, task_id)
        SELECT fullkey, substr(CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                               ELSE CAST(atom AS TEXT) END, 1, 100), NEW.id
        FROM json_each(NEW.meta) WHERE atom IS NOT NULL;
END;
CREATE TRIGGER tasks_meta_insert_nested AFTER INSERT ON tasks
WHEN instr(substr(NEW.meta, 2), '{') > 0 BEGIN
    INSERT OR IGNORE INTO task_meta (key, value, task_id)
        SELECT fullkey, substr(CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                               ELSE CAST(atom AS TEXT) END, 1, 100), NEW.id
        FROM json_tree(NEW.meta)
        WHERE path <> '$' AND atom IS NOT NULL AND typeof(key) = 'text';
END;
CREATE TRIGGER tasks_meta_update AFTER UPDATE OF meta ON tasks
WHEN OLD.meta IS NOT NEW.meta BEGIN
    DELETE FROM task_meta WHERE (key, value, task_id) IN (
        SELECT fullkey, substr(CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                               ELSE CAST(atom AS TEXT) END, 1, 100), OLD.id
        FROM json_tree(OLD.meta) WHERE atom IS NOT NULL AND typeof(key) = 'text');
    INSERT OR IGNORE INTO task_meta (key, value, task_id)
        SELECT fullkey, substr(CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                               ELSE CAST(atom AS TEXT) END, 1, 100), NEW.id
        FROM json_tree(NEW.meta) WHERE atom IS NOT NULL AND typeof(key) = 'text';
END;
CREATE TRIGGER tasks_meta_delete AFTER DELETE ON tasks WHEN OLD.meta <> '{}' BEGIN
    DELETE FROM task_meta WHERE (key, value, task_id) IN (
        SELECT fullkey, substr(CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                               ELSE CAST(atom AS TEXT) END, 1, 100), OLD.id
        FROM json_tree(OLD.meta) WHERE atom IS NOT NULL AND typeof(key) = 'text');
END;

-- The text `--text WORD` looks in (name, argv and function, as the filter joins them),
-- as trigrams (FTS5, case-insensitive): a word of 3 characters or more is found through
-- it, then checked with LIKE on the task. Contentless, detail=none and columnsize=0:
-- the smallest index that answers "which tasks hold these trigrams" (no copy of the
-- text, no positions, no lengths for ranking: an insert writes its trigrams only).
-- Metadata is left to --meta: its text doubled what a submit spent on this index.
CREATE VIRTUAL TABLE tasks_text USING fts5 (body, content='', tokenize='trigram',
                                            detail='none', columnsize=0);

INSERT INTO tasks_text (rowid, body)
    SELECT id, COALESCE(name, '') || ' ' || argv || ' ' || COALESCE(function, '')
    FROM tasks;

CREATE TRIGGER tasks_text_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_text (rowid, body) VALUES (NEW.id, COALESCE(NEW.name, '') || ' '
        || NEW.argv || ' ' || COALESCE(NEW.function, ''));
END;
CREATE TRIGGER tasks_text_update AFTER UPDATE OF name, argv, function ON tasks
WHEN OLD.name IS NOT NEW.name OR OLD.argv IS NOT NEW.argv
     OR OLD.function IS NOT NEW.function BEGIN
    INSERT INTO tasks_text (tasks_text, rowid, body) VALUES ('delete', OLD.id,
        COALESCE(OLD.name, '') || ' ' || OLD.argv || ' ' || COALESCE(OLD.function, ''));
    INSERT INTO tasks_text (rowid, body) VALUES (NEW.id, COALESCE(NEW.name, '') || ' '
        || NEW.argv || ' ' || COALESCE(NEW.function, ''));
END;
CREATE TRIGGER tasks_text_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_text (tasks_text, rowid, body) VALUES ('delete', OLD.id,
        COALESCE(OLD.name, '') || ' ' || OLD.argv || ' ' || COALESCE(OLD.function, ''));
END;
