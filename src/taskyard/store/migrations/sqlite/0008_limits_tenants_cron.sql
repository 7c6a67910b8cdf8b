-- taskyard schema 8 (SQLite): queue parallel limits, mutexes, tenants, cron schedules.
ALTER TABLE queues ADD COLUMN parallel INTEGER;  -- NULL: no limit but the servers' slots

ALTER TABLE tasks ADD COLUMN mutex TEXT;  -- at most one active task per key
ALTER TABLE tasks ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE tasks ADD COLUMN schedule TEXT;  -- the cron schedule that fired it
ALTER TABLE tasks ADD COLUMN fire_at REAL;   -- ... and for which tick
-- Exactly one task per (schedule, tick), whoever fires it.
CREATE UNIQUE INDEX tasks_tick ON tasks (schedule, fire_at) WHERE schedule IS NOT NULL;

CREATE TABLE tenants (
    name       TEXT PRIMARY KEY,
    enabled    INTEGER NOT NULL DEFAULT 1,  -- 0: its tasks stay queued, its schedules idle
    run_as     TEXT,                        -- user its tasks run as (the server must be root)
    parallel   INTEGER,                     -- NULL: no limit of its own
    created_at REAL    NOT NULL
);
INSERT INTO tenants (name, enabled, created_at) VALUES ('default', 1, 0);

CREATE TABLE schedules (
    name       TEXT PRIMARY KEY,
    expr       TEXT    NOT NULL,  -- 5-field cron expression or @alias
    tz         TEXT    NOT NULL,  -- IANA zone the expression is read in
    tenant     TEXT    NOT NULL DEFAULT 'default',
    catch_up   TEXT    NOT NULL,  -- none | one | all
    max_lag    REAL,              -- seconds; NULL: no limit
    spec       TEXT    NOT NULL,  -- JSON: what each tick submits (argv, queue, env, ...)
    paused     INTEGER NOT NULL DEFAULT 0,
    last_tick  REAL    NOT NULL,  -- ticks up to here are accounted for (fired or skipped)
    next_at    REAL,              -- the next tick, for listing and sleeping
    fired      INTEGER NOT NULL DEFAULT 0,
    created_at REAL    NOT NULL
);
