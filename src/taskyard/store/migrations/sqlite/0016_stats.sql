-- taskyard schema 16 (sqlite): what `taskyard stats` reads by time.
-- Tasks submitted in a window, by their submit time.
CREATE INDEX tasks_created ON tasks (created_at);
-- Starts and ends in a window: claims (queued -> running) and entries into an end
-- status. Partial, so the other events (pause, resume, promote...) cost nothing more.
CREATE INDEX events_stats ON events (at)
    WHERE to_status IN ('running', 'succeeded', 'failed', 'stopped');
-- The resident memory of a running attempt's process group, sampled by its server at
-- every heartbeat (summed from /proc over the group), and when.
ALTER TABLE attempts ADD COLUMN rss_kib INTEGER;
ALTER TABLE attempts ADD COLUMN rss_at REAL;
