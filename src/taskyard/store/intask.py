"""What a running attempt writes of itself (progress, checkpoints, steps, its own
verdict), fenced by its epoch, and what operators send it (config, custom signals,
a graceful stop). Mixed into the SQL stores."""

from __future__ import annotations

import json
import time

from ..errors import NotFound, StaleAttempt, TransitionError
from ..lifecycle import Status
from ..model import JSON, Task, iso
from . import rows
from .jsonpatch import merge_patch
from .sql import ACTIVE_IN, SqlStoreBase


class InTaskStore(SqlStoreBase):
    """Writes of a running attempt and its operators."""

    def patch_meta(self, task_id: int, patch: dict[str, JSON], max_bytes: int,
                   epoch: int | None = None) -> Task:
        """Merge-patch the metadata; with ``epoch``, only while that attempt runs."""
        from ..validate import check_meta

        check_meta(patch, max_bytes)  # before merging: depth, types, a cycle
        with self._tx() as cur:
            if epoch is not None:
                self._fenced(cur, task_id, epoch)
            task = self._fetch_task(cur, task_id, lock=True)
            merged = merge_patch(task.meta, patch)
            text = check_meta(merged, max_bytes)
            cur.execute(f"UPDATE tasks SET meta=? WHERE id=? RETURNING {rows.TASK_COLUMNS}",
                        (text, task_id))
            return rows.task(cur.fetchone())

    def set_progress(self, task_id: int, epoch: int, done: float | None, total: float | None,
                     message: str | None) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE tasks SET progress_done=?, progress_total=?, progress_message=?"
                f" WHERE id=? AND epoch=? AND status IN {ACTIVE_IN}",
                (done, total, message, task_id, epoch),
            )
            if cur.rowcount == 0:
                self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    # -- inside a running attempt (fenced by its epoch) and its operators --------------

    def report(self, task_id: int, epoch: int, ok: bool, message: str | None) -> None:
        """The attempt's own verdict (its last report counts): kept on the attempt
        whatever its exit; an error also on the task, so that an exit 0 after it ends
        the task failed (reason ``reported``)."""
        with self._tx() as cur:
            self._fenced(cur, task_id, epoch)
            kind = "ok" if ok else "error"
            cur.execute("UPDATE attempts SET report=?, report_message=? WHERE task_id=?"
                        " AND epoch=? AND finished_at IS NULL", (kind, message, task_id, epoch))
            cur.execute("UPDATE tasks SET reported=? WHERE id=? AND epoch=?",
                        (None if ok else (message or "reported an error"), task_id, epoch))

    def checkpoint(self, task_id: int, epoch: int, state: str) -> None:
        """Save a JSON state; the next attempt (retry, restart, crash) starts from it."""
        with self._tx() as cur:
            cur.execute(f"UPDATE tasks SET state=?, state_epoch=? WHERE id=? AND epoch=?"
                        f" AND status IN {ACTIVE_IN}", (state, epoch, task_id, epoch))
            if cur.rowcount == 0:
                self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    def load_state(self, task_id: int) -> tuple[str | None, int | None]:
        """The last checkpoint (JSON text) and the attempt that saved it."""
        with self._read_tx() as cur:
            self._fetch_task(cur, task_id)
            cur.execute("SELECT state, state_epoch FROM tasks WHERE id=?", (task_id,))
            row = cur.fetchone()
        return row[0], row[1]

    def set_steps(self, task_id: int, epoch: int, steps: str, state: str | None) -> None:
        """A multi-step task's status (and its checkpoint with it), fenced."""
        with self._tx() as cur:
            if state is None:
                cur.execute(f"UPDATE tasks SET steps=? WHERE id=? AND epoch=?"
                            f" AND status IN {ACTIVE_IN}", (steps, task_id, epoch))
            else:
                cur.execute(f"UPDATE tasks SET steps=?, state=?, state_epoch=? WHERE id=?"
                            f" AND epoch=? AND status IN {ACTIVE_IN}",
                            (steps, state, epoch, task_id, epoch))
            if cur.rowcount == 0:
                self._fetch_task(cur, task_id)
                raise StaleAttempt(f"task {task_id} attempt {epoch} is not running")

    def poll_task(self, task_id: int) -> tuple[int, int, int, str]:
        """What a running task checks often and cheaply: (config version, the epoch a
        graceful stop was asked for, unacknowledged signals, status)."""
        with self._read_tx() as cur:
            cur.execute("SELECT config_version, stop_asked, status FROM tasks WHERE id=?",
                        (task_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no task {task_id}", field="id")
            cur.execute("SELECT COUNT(*) FROM signals WHERE task_id=? AND acked_at IS NULL",
                        (task_id,))
            pending = cur.fetchone()[0]
        return int(row[0]), int(row[1]), int(pending), str(row[2])

    def get_config(self, task_id: int) -> tuple[int, dict[str, JSON]]:
        with self._read_tx() as cur:
            cur.execute("SELECT config_version, config FROM tasks WHERE id=?", (task_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no task {task_id}", field="id")
        return int(row[0]), json.loads(row[1])

    def set_config(self, task_id: int, patch: dict[str, JSON], max_bytes: int) -> Task:
        """Merge-patch a task's live config (it sees the change on its next read)."""
        from ..validate import check_meta

        with self._tx() as cur:
            task = self._fetch_task(cur, task_id, lock=True)
            if task.terminal:
                raise TransitionError(f"cannot change the config of task {task_id}: it is"
                                      f" {task.status}")
            text = check_meta(merge_patch(task.config, patch), max_bytes)
            cur.execute("UPDATE tasks SET config=?, config_version=config_version+1 WHERE id=?"
                        f" RETURNING {rows.TASK_COLUMNS}", (text, task_id))
            return rows.task(cur.fetchone())

    def send_signal(self, task_id: int, name: str, data: str | None, *,
                    by: str) -> dict[str, JSON]:
        """Queue a custom signal for the task to read; only for a task not yet ended."""
        now = time.time()
        with self._tx() as cur:
            task = self._fetch_task(cur, task_id, lock=True)
            if task.terminal:
                raise TransitionError(f"cannot signal task {task_id}: it is {task.status}")
            cur.execute("INSERT INTO signals (task_id, name, data, by, sent_at)"
                        " VALUES (?,?,?,?,?) RETURNING id", (task_id, name, data, by, now))
            signal_id = cur.fetchone()[0]
        return {"id": signal_id, "task_id": task_id, "name": name,
                "data": json.loads(data) if data is not None else None, "sent_at": iso(now)}

    def signals(self, task_id: int, epoch: int | None = None,
                clear: bool = False) -> list[dict[str, JSON]]:
        """Signals not yet acknowledged, oldest first; ``clear`` acknowledges them (only
        the task's current attempt may: fenced by ``epoch``)."""
        with self._tx() if clear else self._read_tx() as cur:
            if clear:
                assert epoch is not None
                self._fenced(cur, task_id, epoch)
            else:
                self._fetch_task(cur, task_id)
            cur.execute("SELECT id, name, data, by, sent_at FROM signals WHERE task_id=?"
                        " AND acked_at IS NULL ORDER BY id", (task_id,))
            found = cur.fetchall()
            if clear and found:
                cur.execute("UPDATE signals SET acked_at=? WHERE task_id=? AND acked_at IS NULL"
                            " AND id <= ?", (time.time(), task_id, found[-1][0]))
        return [{"id": r[0], "name": r[1], "data": json.loads(r[2]) if r[2] is not None else None,
                 "by": r[3], "sent_at": iso(r[4])} for r in found]

    def others_waiting(self, task_id: int) -> bool:
        """Whether a task other than ``task_id`` is queued (for a multi-step task to
        decide whether to give its slot back)."""
        with self._read_tx() as cur:
            cur.execute("SELECT 1 FROM tasks WHERE status=? AND id <> ? LIMIT 1",
                        (Status.QUEUED.value, task_id))
            return cur.fetchone() is not None

    def ask_stop(self, task_id: int) -> Task:
        """Ask the running attempt to stop by itself (``ctx.should_stop()`` turns true)."""
        with self._tx() as cur:
            cur.execute(f"UPDATE tasks SET stop_asked=epoch WHERE id=? AND status IN {ACTIVE_IN}"
                        f" RETURNING {rows.TASK_COLUMNS}", (task_id,))
            row = cur.fetchone()
            if row is None:
                task = self._fetch_task(cur, task_id)
                raise TransitionError(f"cannot stop task {task_id} gracefully: it is"
                                      f" {task.status}")
            return rows.task(row)
