-- taskyard schema 10: a chunk is stored once per (attempt, stream, offset), so a
-- server that lost its connection mid-commit can write its batch again.
DROP INDEX chunks_pos;
CREATE UNIQUE INDEX chunks_pos ON chunks (task_id, epoch, stream, "offset");

-- One row per leased role (cron): which server holds it, and until when.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
