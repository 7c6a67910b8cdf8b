-- taskyard schema 2 (PostgreSQL): a running time limit per task.
ALTER TABLE tasks ADD COLUMN timeout double precision;  -- seconds of running; NULL: none
