-- taskyard schema 27 (postgres): vacuum the tables a claim reads by how much changed in
-- them, not by their size.
--
-- A claim moves its task out of 'queued': the row's old version, and its old entry in
-- every index (tasks_status, which the claim reads from its head, among them), stay until
-- a vacuum. Autovacuum's default trigger is 50 dead rows plus 20 % of the table: with
-- 1,000 tasks stored that is every 250 changes, with 1,000,000 every 200,050 (some
-- 67,000 tasks run). Until then every claim steps over the dead entries at the head of
-- the queue (measured: 6 buffers a claim after a vacuum, 61 after 9,200 tasks ran), and
-- the heartbeat's bitmap scans of open attempts and running tasks read every dead row
-- (1 and 7 buffers after a vacuum; 170 and 606 after 9,200 tasks). A fixed trigger of
-- 5,000 dead rows makes a million-task store as clean as a small one (autovacuum looks at
-- most once a minute, autovacuum_naptime, so a busy store of any size is vacuumed about
-- that often).
ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
ALTER TABLE attempts SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
