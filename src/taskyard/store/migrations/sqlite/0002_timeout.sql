-- taskyard schema 2 (SQLite): a running time limit per task.
ALTER TABLE tasks ADD COLUMN timeout REAL;  -- seconds of running; NULL: none
