-- taskyard schema 21 (sqlite): rate limits, at most N starts per sliding period per key.
ALTER TABLE tasks ADD COLUMN rate_key TEXT;  -- its own key (--rate-limit KEY=N/PERIOD)
ALTER TABLE tasks ADD COLUMN rate TEXT;      -- its own rate, 'N/SECONDS'
ALTER TABLE queues ADD COLUMN rate TEXT;     -- the queue's rate (queue set --rate), 'N/SECONDS'
-- One row per start of a rate-limited task, written in the claiming transaction:
-- 'k:<key>' for a task's key, 'q:<queue>' for a queue's rate.
CREATE TABLE rate_starts (
    key TEXT NOT NULL,
    at  REAL NOT NULL
);
CREATE INDEX rate_starts_key_at ON rate_starts (key, at);
-- The longest period declared for a key: its starts older than that never count again.
CREATE TABLE rate_keys (
    key    TEXT PRIMARY KEY,
    period REAL NOT NULL
);
