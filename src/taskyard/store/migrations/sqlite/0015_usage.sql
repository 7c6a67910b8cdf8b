-- taskyard schema 15 (sqlite): what an attempt used.
ALTER TABLE attempts ADD COLUMN cpu_user REAL;      -- seconds of user CPU
ALTER TABLE attempts ADD COLUMN cpu_system REAL;    -- seconds of system CPU
ALTER TABLE attempts ADD COLUMN max_rss_kib INTEGER;   -- peak resident memory, KiB
