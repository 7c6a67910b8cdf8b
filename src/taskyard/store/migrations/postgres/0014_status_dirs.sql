-- taskyard schema 14 (postgres): a queue's own status directory (queue set Q --status-dir DIR).
ALTER TABLE queues ADD COLUMN status_dir text;  -- files DIR/<queue>/<task id>; NULL: the server's
