-- taskyard schema 24 (postgres): what `ls --kind` reads.
-- A task's kind is a function task (function set) or a command (none): a partial index
-- on id each, so that a page of either, newest first, is read off its index whichever
-- is rare. (Submit times are found by id, as stats finds them; names, queues, tenants
-- and statuses have their (column, id) indexes since schema 11.)
CREATE INDEX tasks_functions ON tasks (id) WHERE function IS NOT NULL;
CREATE INDEX tasks_commands ON tasks (id) WHERE function IS NULL;
CREATE INDEX tasks_tracked ON tasks (id) WHERE tracked <> 0;
