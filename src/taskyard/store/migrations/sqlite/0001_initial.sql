-- taskyard schema 1 (SQLite). Times are unix seconds (REAL), shown as ISO 8601 UTC.

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after rm
    name             TEXT,
    queue            TEXT    NOT NULL DEFAULT 'default',
    status           TEXT    NOT NULL,
    reason           TEXT,
    exit_code        INTEGER,
    signal           INTEGER,
    error            TEXT,
    argv             TEXT    NOT NULL,   -- JSON array of strings
    env              TEXT    NOT NULL,   -- JSON object
    cwd              TEXT,
    meta             TEXT    NOT NULL,   -- JSON object
    stdin            BLOB,
    stdin_open       INTEGER NOT NULL DEFAULT 0,
    progress_done    REAL,
    progress_total   REAL,
    progress_message TEXT,
    epoch            INTEGER NOT NULL DEFAULT 0,  -- fencing token: the current attempt
    owner            TEXT,                        -- server instance owning the current attempt
    pid              INTEGER,
    created_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    changed_by       TEXT    NOT NULL,            -- who made the last status change (for events)
    changed_at       REAL    NOT NULL
);
CREATE INDEX tasks_status ON tasks (status, id);

CREATE TABLE attempts (
    task_id     INTEGER NOT NULL,
    epoch       INTEGER NOT NULL,
    owner       TEXT    NOT NULL,
    run_tag     TEXT    NOT NULL,
    pid         INTEGER,
    pid_start   INTEGER,
    status      TEXT,
    reason      TEXT,
    exit_code   INTEGER,
    signal      INTEGER,
    error       TEXT,
    started_at  REAL    NOT NULL,
    finished_at REAL,
    PRIMARY KEY (task_id, epoch)
);
CREATE INDEX attempts_open ON attempts (owner) WHERE finished_at IS NULL;

-- Every status change writes an event in the same transaction: history cannot drift.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL,
    at          REAL    NOT NULL,
    from_status TEXT,
    to_status   TEXT    NOT NULL,
    by          TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    detail      TEXT
);
CREATE INDEX events_task ON events (task_id, id);

CREATE TRIGGER tasks_event_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO events (task_id, at, from_status, to_status, by, attempt, detail)
    VALUES (NEW.id, NEW.changed_at, NULL, NEW.status, NEW.changed_by, NEW.epoch, NULL);
END;
CREATE TRIGGER tasks_event_update AFTER UPDATE OF status ON tasks
WHEN OLD.status IS NOT NEW.status BEGIN
    INSERT INTO events (task_id, at, from_status, to_status, by, attempt, detail)
    VALUES (NEW.id, NEW.changed_at, OLD.status, NEW.status, NEW.changed_by, NEW.epoch, NEW.reason);
END;

-- Output: per (task, attempt, stream) a true byte count, and the kept chunks.
CREATE TABLE streams (
    task_id   INTEGER NOT NULL,
    epoch     INTEGER NOT NULL,
    stream    TEXT    NOT NULL,
    total     INTEGER NOT NULL,   -- bytes the task wrote
    head      INTEGER NOT NULL,   -- bytes [0, head) are always kept
    PRIMARY KEY (task_id, epoch, stream)
);
CREATE TABLE chunks (
    id      INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    stream  TEXT    NOT NULL,
    offset  INTEGER NOT NULL,
    data    BLOB    NOT NULL
);
CREATE INDEX chunks_pos ON chunks (task_id, epoch, stream, offset);

-- Controls: written by users, applied by the server owning the attempt.
CREATE TABLE requests (
    id         INTEGER PRIMARY KEY,
    task_id    INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT,
    by         TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending',
    result     TEXT,
    done_at    REAL
);
CREATE INDEX requests_pending ON requests (task_id) WHERE state = 'pending';

CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    host         TEXT    NOT NULL,
    boot_id      TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    slots        INTEGER NOT NULL,
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL,
    stopped_at   REAL,
    stop_request TEXT
);
