-- taskyard schema 11 (SQLite): what the HTTP API and the web panel need.

-- API tokens. Only a hash of the secret is kept; the secret is shown once.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    role        TEXT    NOT NULL,             -- viewer | operator | admin
    tenant      TEXT,                         -- NULL: every tenant
    secret_hash TEXT    NOT NULL UNIQUE,      -- sha256 of the secret, hex
    created_at  REAL    NOT NULL,
    created_by  TEXT    NOT NULL,
    expires_at  REAL,                         -- NULL: never
    revoked_at  REAL,
    used_at     REAL,                         -- last request (updated at most once a minute)
    login       INTEGER NOT NULL DEFAULT 0    -- 1: made by `web login-url` for a panel session
);

-- Panel sessions (a cookie holds the id; only its hash is kept), each bound to a token.
CREATE TABLE web_sessions (
    id_hash    TEXT    PRIMARY KEY,
    token_id   INTEGER NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    expires_at REAL    NOT NULL
);
CREATE INDEX web_sessions_token ON web_sessions (token_id);

-- One-time login links (`taskyard web login-url`).
CREATE TABLE login_tickets (
    id_hash    TEXT    PRIMARY KEY,
    token_id   INTEGER NOT NULL,
    expires_at REAL    NOT NULL,
    used_at    REAL
);

-- Idempotency-Key of POST /api/v1/tasks: the task made the first time (kept 24 h).
CREATE TABLE idempotency (
    token_id   INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    task_id    INTEGER NOT NULL,
    created_at REAL    NOT NULL,
    PRIMARY KEY (token_id, key)
);

-- The set of tasks a bulk action's dry run showed, to act on exactly that set (kept 1 h).
CREATE TABLE bulk_snapshots (
    id         TEXT    PRIMARY KEY,
    token_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    ids        TEXT    NOT NULL,  -- JSON array of task ids
    created_at REAL NOT NULL
);

-- Tasks per (tenant, queue, status), kept by triggers, so that counts are instant on a
-- store of millions: n is how many are in that status now, entered how many times a
-- task entered it (a counter for metrics; the status 'submitted' counts inserts).
CREATE TABLE task_counts (
    tenant  TEXT    NOT NULL,
    queue   TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    n       INTEGER NOT NULL DEFAULT 0,
    entered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, queue, status)
);
INSERT INTO task_counts (tenant, queue, status, n, entered)
    SELECT tenant, queue, status, count(*), count(*) FROM tasks GROUP BY tenant, queue, status;
INSERT INTO task_counts (tenant, queue, status, n, entered)
    SELECT tenant, queue, 'submitted', 0, count(*) FROM tasks GROUP BY tenant, queue;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (tenant, queue, status, n, entered)
    VALUES (NEW.tenant, NEW.queue, NEW.status, 1, 1), (NEW.tenant, NEW.queue, 'submitted', 0, 1)
    ON CONFLICT (tenant, queue, status) DO UPDATE
    SET n = n + excluded.n, entered = entered + 1;
END;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
WHEN OLD.status IS NOT NEW.status BEGIN
    UPDATE task_counts SET n = n - 1
    WHERE tenant = OLD.tenant AND queue = OLD.queue AND status = OLD.status;
    INSERT INTO task_counts (tenant, queue, status, n, entered)
    VALUES (NEW.tenant, NEW.queue, NEW.status, 1, 1)
    ON CONFLICT (tenant, queue, status) DO UPDATE SET n = n + 1, entered = entered + 1;
END;
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1
    WHERE tenant = OLD.tenant AND queue = OLD.queue AND status = OLD.status;
END;

-- Histograms for metrics, by triggers too: 'wait' is the time a task spent queued before
-- a claim, 'run' the time from its start to its end. le is the bucket's upper bound
-- (seconds; 1e300 for +Inf); the web process adds them up into Prometheus histograms.
CREATE TABLE task_timings (
    tenant TEXT    NOT NULL,
    queue  TEXT    NOT NULL,
    kind   TEXT    NOT NULL,  -- wait | run
    le     REAL    NOT NULL,
    n      INTEGER NOT NULL DEFAULT 0,
    total  REAL    NOT NULL DEFAULT 0,  -- sum of the observations in this bucket
    PRIMARY KEY (tenant, queue, kind, le)
);
CREATE TRIGGER tasks_timing_claim AFTER UPDATE OF status ON tasks
WHEN OLD.status = 'queued' AND NEW.status = 'running' BEGIN
    INSERT INTO task_timings (tenant, queue, kind, le, n, total)
    SELECT NEW.tenant, NEW.queue, 'wait', CASE
        WHEN d <= 0.01 THEN 0.01 WHEN d <= 0.1 THEN 0.1 WHEN d <= 1 THEN 1
        WHEN d <= 10 THEN 10 WHEN d <= 60 THEN 60 WHEN d <= 600 THEN 600
        WHEN d <= 3600 THEN 3600 WHEN d <= 86400 THEN 86400 ELSE 1e300 END, 1, d
    FROM (SELECT max(0, NEW.changed_at - OLD.changed_at) AS d)
    WHERE true
    ON CONFLICT (tenant, queue, kind, le) DO UPDATE SET n = n + 1, total = total + excluded.total;
END;
CREATE TRIGGER tasks_timing_end AFTER UPDATE OF status ON tasks
WHEN OLD.status IN ('running', 'paused') AND NEW.status IN ('succeeded', 'failed', 'stopped')
     AND NEW.started_at IS NOT NULL BEGIN
    INSERT INTO task_timings (tenant, queue, kind, le, n, total)
    SELECT NEW.tenant, NEW.queue, 'run', CASE
        WHEN d <= 0.01 THEN 0.01 WHEN d <= 0.1 THEN 0.1 WHEN d <= 1 THEN 1
        WHEN d <= 10 THEN 10 WHEN d <= 60 THEN 60 WHEN d <= 600 THEN 600
        WHEN d <= 3600 THEN 3600 WHEN d <= 86400 THEN 86400 ELSE 1e300 END, 1, d
    FROM (SELECT max(0, coalesce(NEW.finished_at, NEW.changed_at) - NEW.started_at) AS d)
    WHERE true
    ON CONFLICT (tenant, queue, kind, le) DO UPDATE SET n = n + 1, total = total + excluded.total;
END;

-- Browsing a store of millions newest first, by status, queue, tenant or name.
CREATE INDEX tasks_by_status ON tasks (status, id);
CREATE INDEX tasks_by_queue ON tasks (queue, id);
CREATE INDEX tasks_by_tenant ON tasks (tenant, id);
CREATE INDEX tasks_by_name ON tasks (name, id) WHERE name IS NOT NULL;
