-- taskyard schema 23 (postgres): tracked tasks, work taskyard did not start.
-- kind = tracked (command and function tasks are told apart by `function`).
ALTER TABLE tasks ADD COLUMN tracked integer NOT NULL DEFAULT 0;
-- The owner of a live tracked task: a process on `host` (since boot `boot_id`) named by
-- (pid, start time). Deleted when the task ends, so that a server's look at the owners on
-- its host at each heartbeat reads only the live ones.
CREATE TABLE tracked (
    task_id   bigint PRIMARY KEY,
    epoch     bigint NOT NULL,
    host      text    NOT NULL,
    boot_id   text    NOT NULL,
    pid       bigint NOT NULL,
    pid_start bigint,
    killable  integer NOT NULL DEFAULT 0
);
CREATE INDEX tracked_host ON tracked (host);
