-- taskyard schema 4 (SQLite): retries with backoff.
ALTER TABLE tasks ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;      -- retries allowed
ALTER TABLE tasks ADD COLUMN retried INTEGER NOT NULL DEFAULT 0;      -- retries used (restart resets)
ALTER TABLE tasks ADD COLUMN retry_delay REAL NOT NULL DEFAULT 1.0;   -- seconds before the first
ALTER TABLE tasks ADD COLUMN backoff TEXT NOT NULL DEFAULT 'exponential';
ALTER TABLE tasks ADD COLUMN retry_on TEXT NOT NULL DEFAULT 'exit,signal,timeout';
