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

-- Tasks per (tenant, queue, status) now, kept by triggers, so that counts are instant on
-- a store of millions. (Counters and histograms for metrics are read from the events
-- by the web process instead: a trigger per histogram cost every task more than the
-- counts do.)
CREATE TABLE task_counts (
    tenant  TEXT    NOT NULL,
    queue   TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    n       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, queue, status)
);
INSERT INTO task_counts (tenant, queue, status, n)
    SELECT tenant, queue, status, count(*) FROM tasks GROUP BY tenant, queue, status;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (tenant, queue, status, n) VALUES (NEW.tenant, NEW.queue, NEW.status, 1)
    ON CONFLICT (tenant, queue, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
WHEN OLD.status IS NOT NEW.status BEGIN
    UPDATE task_counts SET n = n - 1
    WHERE tenant = OLD.tenant AND queue = OLD.queue AND status = OLD.status;
    INSERT INTO task_counts (tenant, queue, status, n) VALUES (NEW.tenant, NEW.queue, NEW.status, 1)
    ON CONFLICT (tenant, queue, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1
    WHERE tenant = OLD.tenant AND queue = OLD.queue AND status = OLD.status;
END;

-- Browsing a store of millions newest first, by status, queue, tenant or name.
CREATE INDEX tasks_by_status ON tasks (status, id);
CREATE INDEX tasks_by_queue ON tasks (queue, id);
CREATE INDEX tasks_by_tenant ON tasks (tenant, id);
CREATE INDEX tasks_by_name ON tasks (name, id) WHERE name IS NOT NULL;
