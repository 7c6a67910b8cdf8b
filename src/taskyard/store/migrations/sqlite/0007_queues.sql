-- taskyard schema 7 (SQLite): named queues that can be paused.
CREATE TABLE queues (
    name   TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0  -- 1: its queued tasks are not claimed
);
