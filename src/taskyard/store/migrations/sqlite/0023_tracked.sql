-- taskyard schema 23 (sqlite): tracked tasks, work taskyard did not start.
-- kind = tracked (command and function tasks are told apart by `function`).
ALTER TABLE tasks ADD COLUMN tracked INTEGER NOT NULL DEFAULT 0;
-- The owner of a live tracked task: a process on `host` (since boot `boot_id`) named by
-- (pid, start time). Deleted when the task ends, so that a server's look at the owners on
-- its host at each heartbeat reads only the live ones.
CREATE TABLE tracked (
    task_id   INTEGER PRIMARY KEY,
    epoch     INTEGER NOT NULL,
    host      TEXT    NOT NULL,
    boot_id   TEXT    NOT NULL,
    pid       INTEGER NOT NULL,
    pid_start INTEGER,
    killable  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tracked_host ON tracked (host);
