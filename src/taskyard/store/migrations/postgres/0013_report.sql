-- taskyard schema 13 (postgres): a task's own verdict (taskyard report ok|error MESSAGE).
ALTER TABLE attempts ADD COLUMN report text;          -- ok | error, the attempt's last report
ALTER TABLE attempts ADD COLUMN report_message text;  -- what it said with an error
ALTER TABLE tasks ADD COLUMN reported text;           -- the current attempt's reported error
