-- taskyard schema 6 (PostgreSQL): --unique KEY, one live task per key.
ALTER TABLE tasks ADD COLUMN unique_key text;
CREATE INDEX tasks_unique ON tasks (unique_key) WHERE unique_key IS NOT NULL;
