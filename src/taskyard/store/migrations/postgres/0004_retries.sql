-- taskyard schema 4 (PostgreSQL): retries with backoff.
ALTER TABLE tasks ADD COLUMN retries integer NOT NULL DEFAULT 0;      -- retries allowed
ALTER TABLE tasks ADD COLUMN retried integer NOT NULL DEFAULT 0;      -- retries used (restart resets)
ALTER TABLE tasks ADD COLUMN retry_delay double precision NOT NULL DEFAULT 1.0;
ALTER TABLE tasks ADD COLUMN backoff text NOT NULL DEFAULT 'exponential';
ALTER TABLE tasks ADD COLUMN retry_on text NOT NULL DEFAULT 'exit,signal,timeout';
