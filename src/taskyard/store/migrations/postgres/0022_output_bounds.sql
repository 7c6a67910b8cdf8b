-- taskyard schema 22 (postgres): per-task output bounds. How many bytes of each stream a
-- task keeps from the start (head) and from the end (tail); NULL: its queue's, else
-- the server's (output_head_mib, output_tail_mib). The attempt records the bounds it
-- ran with, resolved at the claim, for `show`.
ALTER TABLE tasks ADD COLUMN output_head bigint;
ALTER TABLE tasks ADD COLUMN output_tail bigint;
ALTER TABLE queues ADD COLUMN output_head bigint;
ALTER TABLE queues ADD COLUMN output_tail bigint;
ALTER TABLE attempts ADD COLUMN output_head bigint;
ALTER TABLE attempts ADD COLUMN output_tail bigint;
