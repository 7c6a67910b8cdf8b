-- taskyard schema 12 (SQLite): data a task reads on file descriptors past 2 (--fd N=...).
ALTER TABLE tasks ADD COLUMN fds TEXT;      -- JSON object: {"3": "<base64>"}; read by the claim
ALTER TABLE tasks ADD COLUMN fd_list TEXT;  -- the descriptors given ("3,4"), shown by show
