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

-- Tasks per (tenant, queue, status) now, so that counts are instant on a store of
-- millions. Triggers only ever INSERT into task_count_deltas: updating shared counter
-- rows in place would make every claim, finish and submit of every server queue up on
-- the same few rows, and deadlock (a batch that finishes then claims locks 'running'
-- then 'queued'; a claim alone, 'queued' then 'running'). Servers fold the deltas into
-- task_counts at their heartbeats; readers add up both. (Counters and histograms for
-- metrics are read from the events by the web process.)
CREATE TABLE task_counts (
    tenant  text    NOT NULL,
    queue   text    NOT NULL,
    status  text    NOT NULL,
    n       bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, queue, status)
);
CREATE TABLE task_count_deltas (
    tenant  text    NOT NULL,
    queue   text    NOT NULL,
    status  text    NOT NULL,
    n       bigint  NOT NULL
);
INSERT INTO task_counts (tenant, queue, status, n)
    SELECT tenant, queue, status, count(*) FROM tasks GROUP BY tenant, queue, status;

CREATE FUNCTION taskyard_task_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_count_deltas (tenant, queue, status, n)
        VALUES (NEW.tenant, NEW.queue, NEW.status, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO task_count_deltas (tenant, queue, status, n)
        VALUES (OLD.tenant, OLD.queue, OLD.status, -1);
    ELSE
        INSERT INTO task_count_deltas (tenant, queue, status, n)
        VALUES (OLD.tenant, OLD.queue, OLD.status, -1), (NEW.tenant, NEW.queue, NEW.status, 1);
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
