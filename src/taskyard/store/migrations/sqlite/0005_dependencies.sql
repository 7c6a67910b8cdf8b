-- taskyard schema 5 (SQLite): a task starts only after others succeeded (--after).
CREATE TABLE deps (
    task_id  INTEGER NOT NULL,  -- waits
    after_id INTEGER NOT NULL,  -- for this one to succeed
    PRIMARY KEY (task_id, after_id)
);
CREATE INDEX deps_after ON deps (after_id);
