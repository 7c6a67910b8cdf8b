-- taskyard schema 7 (PostgreSQL): named queues that can be paused.
CREATE TABLE queues (
    name   text PRIMARY KEY,
    paused integer NOT NULL DEFAULT 0  -- 1: its queued tasks are not claimed
);
