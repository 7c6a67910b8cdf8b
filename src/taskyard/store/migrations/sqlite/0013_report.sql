-- taskyard schema 13 (sqlite): a task's own verdict (taskyard report ok|error MESSAGE).
ALTER TABLE attempts ADD COLUMN report TEXT;          -- ok | error, the attempt's last report
ALTER TABLE attempts ADD COLUMN report_message TEXT;  -- what it said with an error
ALTER TABLE tasks ADD COLUMN reported TEXT;           -- the current attempt's reported error
