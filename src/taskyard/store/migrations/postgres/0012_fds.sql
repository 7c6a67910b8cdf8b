-- taskyard schema 12 (PostgreSQL): data a task reads on file descriptors past 2 (--fd N=...).
ALTER TABLE tasks ADD COLUMN fds text;      -- JSON object: {"3": "<base64>"}; read by the claim
ALTER TABLE tasks ADD COLUMN fd_list text;  -- the descriptors given ("3,4"), shown by show
