-- taskyard schema 6 (SQLite): --unique KEY, one live task per key.
ALTER TABLE tasks ADD COLUMN unique_key TEXT;
CREATE INDEX tasks_unique ON tasks (unique_key) WHERE unique_key IS NOT NULL;
