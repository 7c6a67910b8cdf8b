-- taskyard schema 19 (postgres): what `taskyard stats` reads by time.
-- (Tasks submitted in a window are found by their ids, which follow their submit
-- times: an index on tasks.created_at cost every submit 5 % of a task's store CPU.)
-- Starts and ends in a window: claims (queued -> running) and entries into an end
-- status. Partial, so the other events (pause, resume, promote...) cost nothing more.
CREATE INDEX events_stats ON events (at)
    WHERE to_status IN ('running', 'succeeded', 'failed', 'stopped');
-- The resident memory of a running attempt's process group, sampled by its server at
-- every heartbeat (summed from /proc over the group), and when.
ALTER TABLE attempts ADD COLUMN rss_kib bigint;
ALTER TABLE attempts ADD COLUMN rss_at double precision;
