-- taskyard schema 26 (sqlite): the status file an attempt's server writes, fixed when it
-- is claimed (its queue's status dir, else the server's status_dir), so that every
-- client shows where it is, and a later change of the queue's dir does not split one
-- task's file in two. NULL: no status files for that attempt.
ALTER TABLE attempts ADD COLUMN status_file TEXT;
