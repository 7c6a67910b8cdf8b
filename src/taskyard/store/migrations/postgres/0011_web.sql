-- taskyard schema 11 (PostgreSQL): what the HTTP API and the web panel need.

-- API tokens. Only a hash of the secret is kept; the secret is shown once.
CREATE TABLE tokens (
    id          bigserial PRIMARY KEY,
    name        text    NOT NULL UNIQUE,
    role        text    NOT NULL,             -- viewer | operator | admin
    tenant      text,                         -- NULL: every tenant
    secret_hash text    NOT NULL UNIQUE,      -- sha256 of the secret, hex
    created_at  double precision NOT NULL,
    created_by  text    NOT NULL,
    expires_at  double precision,             -- NULL: never
    revoked_at  double precision,
    used_at     double precision,             -- last request (updated at most once a minute)
    login       integer NOT NULL DEFAULT 0    -- 1: made by `web login-url` for a panel session
);

-- Panel sessions (a cookie holds the id; only its hash is kept), each bound to a token.
CREATE TABLE web_sessions (
    id_hash    text    PRIMARY KEY,
    token_id   bigint  NOT NULL,
    csrf       text    NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX web_sessions_token ON web_sessions (token_id);

-- One-time login links (`taskyard web login-url`).
CREATE TABLE login_tickets (
    id_hash    text    PRIMARY KEY,
    token_id   bigint  NOT NULL,
    expires_at double precision NOT NULL,
    used_at    double precision
);

-- Idempotency-Key of POST /api/v1/tasks: the task made the first time (kept 24 h).
CREATE TABLE idempotency (
    token_id   bigint  NOT NULL,
    key        text    NOT NULL,
    task_id    bigint  NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (token_id, key)
);

-- The set of tasks a bulk action's dry run showed, to act on exactly that set (kept 1 h).
CREATE TABLE bulk_snapshots (
    id         text    PRIMARY KEY,
    token_id   bigint NOT NULL,
    action     text    NOT NULL,
    ids        text    NOT NULL,  -- JSON array of task ids
    created_at double precision NOT NULL
);

-- Tasks per (tenant, queue, status), so that counts are instant on a store of millions:
-- n is how many are in that status now, entered how many times a task entered it (a
-- counter for metrics; the status 'submitted' counts inserts). Triggers only ever
-- INSERT into task_count_deltas: updating shared counter rows in place would make every
-- claim, finish and submit of every server queue up on the same few rows, and deadlock
-- (a batch that finishes then claims locks 'running' then 'queued'; a claim alone,
-- 'queued' then 'running'). Servers fold the deltas into task_counts at their
-- heartbeats; readers add up both.
CREATE TABLE task_counts (
    tenant  text    NOT NULL,
    queue   text    NOT NULL,
    status  text    NOT NULL,
    n       bigint  NOT NULL DEFAULT 0,
    entered bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, queue, status)
);
CREATE TABLE task_count_deltas (
    tenant  text    NOT NULL,
    queue   text    NOT NULL,
    status  text    NOT NULL,
    n       bigint  NOT NULL,
    entered bigint  NOT NULL
);
INSERT INTO task_counts (tenant, queue, status, n, entered)
    SELECT tenant, queue, status, count(*), count(*) FROM tasks GROUP BY tenant, queue, status;
INSERT INTO task_counts (tenant, queue, status, n, entered)
    SELECT tenant, queue, 'submitted', 0, count(*) FROM tasks GROUP BY tenant, queue;

-- Histograms for metrics: 'wait' is the time a task spent queued before a claim, 'run'
-- the time from its start to its end. le is the bucket's upper bound (seconds; 1e300
-- for +Inf); the web process adds them up into Prometheus histograms. Deltas too.
CREATE TABLE task_timings (
    tenant text    NOT NULL,
    queue  text    NOT NULL,
    kind   text    NOT NULL,  -- wait | run
    le     double precision NOT NULL,
    n      bigint  NOT NULL DEFAULT 0,
    total  double precision NOT NULL DEFAULT 0,  -- sum of the observations in this bucket
    PRIMARY KEY (tenant, queue, kind, le)
);
CREATE TABLE task_timing_deltas (
    tenant text    NOT NULL,
    queue  text    NOT NULL,
    kind   text    NOT NULL,
    le     double precision NOT NULL,
    n      bigint  NOT NULL,
    total  double precision NOT NULL
);

CREATE FUNCTION taskyard_bucket(d double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN d <= 0.01 THEN 0.01 WHEN d <= 0.1 THEN 0.1 WHEN d <= 1 THEN 1
                WHEN d <= 10 THEN 10 WHEN d <= 60 THEN 60 WHEN d <= 600 THEN 600
                WHEN d <= 3600 THEN 3600 WHEN d <= 86400 THEN 86400 ELSE 1e300 END
$$;

CREATE FUNCTION taskyard_task_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE d double precision;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_count_deltas (tenant, queue, status, n, entered)
        VALUES (NEW.tenant, NEW.queue, NEW.status, 1, 1),
               (NEW.tenant, NEW.queue, 'submitted', 0, 1);
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO task_count_deltas (tenant, queue, status, n, entered)
        VALUES (OLD.tenant, OLD.queue, OLD.status, -1, 0);
        RETURN NULL;
    END IF;
    INSERT INTO task_count_deltas (tenant, queue, status, n, entered)
    VALUES (OLD.tenant, OLD.queue, OLD.status, -1, 0), (NEW.tenant, NEW.queue, NEW.status, 1, 1);
    IF OLD.status = 'queued' AND NEW.status = 'running' THEN
        d := greatest(0, NEW.changed_at - OLD.changed_at);
        INSERT INTO task_timing_deltas (tenant, queue, kind, le, n, total)
        VALUES (NEW.tenant, NEW.queue, 'wait', taskyard_bucket(d), 1, d);
    ELSIF OLD.status IN ('running', 'paused') AND NEW.status IN ('succeeded', 'failed', 'stopped')
          AND NEW.started_at IS NOT NULL THEN
        d := greatest(0, coalesce(NEW.finished_at, NEW.changed_at) - NEW.started_at);
        INSERT INTO task_timing_deltas (tenant, queue, kind, le, n, total)
        VALUES (NEW.tenant, NEW.queue, 'run', taskyard_bucket(d), 1, d);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION taskyard_task_count();
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION taskyard_task_count();
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION taskyard_task_count();

-- Browsing a store of millions newest first, by status, queue, tenant or name.
CREATE INDEX tasks_by_status ON tasks (status, id);
CREATE INDEX tasks_by_queue ON tasks (queue, id);
CREATE INDEX tasks_by_tenant ON tasks (tenant, id);
CREATE INDEX tasks_by_name ON tasks (name, id) WHERE name IS NOT NULL;
