-- taskyard schema 15 (postgres): what an attempt used.
ALTER TABLE attempts ADD COLUMN cpu_user double precision;      -- seconds of user CPU
ALTER TABLE attempts ADD COLUMN cpu_system double precision;    -- seconds of system CPU
ALTER TABLE attempts ADD COLUMN max_rss_kib bigint;   -- peak resident memory, KiB
