-- taskyard schema 20 (sqlite): messages, a task's third stream of whole JSON values.
-- Per attempt: how many were emitted (numbered from 0), the tail bound it keeps, and
-- how many came through the server's pipe (a retried server write is skipped by it).
CREATE TABLE message_counts (
    task_id   INTEGER NOT NULL,
    epoch     INTEGER NOT NULL,
    total     INTEGER NOT NULL,   -- messages emitted; the next one is number total
    tail      INTEGER NOT NULL,   -- of those past the head, the last this many are kept
    from_pipe INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, epoch)
) WITHOUT ROWID;
-- The kept messages: numbers [0, head) and the last `tail`; raw = 1 when the task
-- wrote a line that was not JSON (kept as {"text": ...}).
CREATE TABLE messages (
    task_id INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    raw     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, epoch, seq)
) WITHOUT ROWID;
