-- taskyard schema 8 (PostgreSQL): queue parallel limits, mutexes, tenants, cron schedules.
ALTER TABLE queues ADD COLUMN parallel integer;  -- NULL: no limit but the servers' slots

ALTER TABLE tasks ADD COLUMN mutex text;  -- at most one active task per key
ALTER TABLE tasks ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE tasks ADD COLUMN schedule text;  -- the cron schedule that fired it
ALTER TABLE tasks ADD COLUMN fire_at double precision;  -- ... and for which tick
-- Exactly one task per (schedule, tick), whoever fires it.
CREATE UNIQUE INDEX tasks_tick ON tasks (schedule, fire_at) WHERE schedule IS NOT NULL;

CREATE TABLE tenants (
    name       text PRIMARY KEY,
    enabled    integer NOT NULL DEFAULT 1,  -- 0: its tasks stay queued, its schedules idle
    run_as     text,                        -- user its tasks run as (the server must be root)
    parallel   integer,                     -- NULL: no limit of its own
    created_at double precision NOT NULL
);
INSERT INTO tenants (name, enabled, created_at) VALUES ('default', 1, 0);

CREATE TABLE schedules (
    name       text PRIMARY KEY,
    expr       text    NOT NULL,  -- 5-field cron expression or @alias
    tz         text    NOT NULL,  -- IANA zone the expression is read in
    tenant     text    NOT NULL DEFAULT 'default',
    catch_up   text    NOT NULL,  -- none | one | all
    max_lag    double precision,  -- seconds; NULL: no limit
    spec       text    NOT NULL,  -- JSON: what each tick submits (argv, queue, env, ...)
    paused     integer NOT NULL DEFAULT 0,
    last_tick  double precision NOT NULL,  -- ticks up to here are accounted for
    next_at    double precision,  -- the next tick, for listing and sleeping
    fired      bigint  NOT NULL DEFAULT 0,
    created_at double precision NOT NULL
);
