-- taskyard schema 20 (postgres): messages, a task's third stream of whole JSON values.
-- Per attempt: how many were emitted (numbered from 0), the tail bound it keeps, and
-- how many came through the server's pipe (a retried server write is skipped by it).
CREATE TABLE message_counts (
    task_id   bigint NOT NULL,
    epoch     bigint NOT NULL,
    total     bigint NOT NULL,
    tail      bigint NOT NULL,
    from_pipe bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, epoch)
);
-- The kept messages: numbers [0, head) and the last `tail`; raw = 1 when the task
-- wrote a line that was not JSON (kept as {"text": ...}).
CREATE TABLE messages (
    task_id bigint NOT NULL,
    epoch   bigint NOT NULL,
    seq     bigint NOT NULL,
    body    text NOT NULL,
    raw     smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, epoch, seq)
);
