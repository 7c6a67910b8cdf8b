"""Messages of attempts: numbered per attempt, bounded (head and tail, like output),
written by the attempt itself (fenced by its epoch) or by its server (fenced by the
owner, in the tick's transaction). Mixed into the SQL stores."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..messages import DEFAULT_TAIL, HEAD, Message, MessagesRead, MessageWrite, encode, kept
from ..model import JSON
from .intask import InTaskStore
from .sql import Cursor


class MessageStore(InTaskStore):
    """Emit and read messages."""

    def emit_messages(self, task_id: int, epoch: int, values: Sequence[JSON], *,
                      tail: int = DEFAULT_TAIL) -> int:
        """Append ``values`` (JSON values, each at most 1 MiB) to the messages of attempt
        ``epoch`` while it is the task's current, active one (else StaleAttempt, nothing
        written); all are checked before any is written (InvalidInput naming
        ``message``). ``tail`` is the attempt's bound if it is its first message.
        Returns the number of the first of them."""
        bodies = [(encode(value), False) for value in values]
        with self._tx() as cur:
            self._fenced(cur, task_id, epoch)
            total, kept_tail, _ = self._counts(cur, task_id, epoch, tail)
            self._append_messages(cur, (task_id, epoch), total, kept_tail, bodies,
                                  len(bodies), 0)
        return total

    def _write_pipe_messages(self, cur: Cursor, w: MessageWrite) -> None:
        """Messages a server read from the attempt's pipe (the caller fenced it). A
        write the store already has (written again after a lost answer) is skipped."""
        total, tail, from_pipe = self._counts(cur, w.task_id, w.epoch, w.tail)
        if w.first < from_pipe:
            return
        self._append_messages(cur, (w.task_id, w.epoch), total, tail, w.values, w.gap_at,
                              w.gap)
        cur.execute("UPDATE message_counts SET from_pipe=? WHERE task_id=? AND epoch=?",
                    (w.first + len(w.values) + w.gap, w.task_id, w.epoch))

    def _counts(self, cur: Cursor, task_id: int, epoch: int,
                tail: int) -> tuple[int, int, int]:
        """(total, tail, from_pipe) of the attempt, its row made and locked."""
        cur.execute("INSERT INTO message_counts (task_id, epoch, total, tail) VALUES (?,?,0,?)"
                    " ON CONFLICT (task_id, epoch) DO NOTHING", (task_id, epoch, tail))
        cur.execute(f"SELECT total, tail, from_pipe FROM message_counts WHERE task_id=?"
                    f" AND epoch=?{self.ROW_LOCK}", (task_id, epoch))
        found: tuple[int, int, int] = tuple(cur.fetchone())
        return found

    def _append_messages(self, cur: Cursor, attempt: tuple[int, int], total: int, tail: int,
                         values: Sequence[tuple[str, bool]], gap_at: int, gap: int) -> None:
        """Number ``values`` from ``total`` on (``gap`` numbers left out before
        ``values[gap_at]``), store those the bound keeps, delete what fell out of it."""
        task_id, epoch = attempt
        new_total = total + len(values) + gap
        rows = []
        for i, (body, raw) in enumerate(values):
            number = total + i + (gap if i >= gap_at else 0)
            if kept(number, new_total, tail):
                rows.append((task_id, epoch, number, body, int(raw)))
        if rows:
            cur.executemany("INSERT INTO messages (task_id, epoch, seq, body, raw)"
                            " VALUES (?,?,?,?,?)", rows)
        keep_from = new_total - tail
        if keep_from > HEAD and keep_from > total - tail:  # some fell out of the tail now
            cur.execute("DELETE FROM messages WHERE task_id=? AND epoch=? AND seq >= ?"
                        " AND seq < ?", (task_id, epoch, max(HEAD, total - tail), keep_from))
        cur.execute("UPDATE message_counts SET total=? WHERE task_id=? AND epoch=?",
                    (new_total, task_id, epoch))

    def read_messages(self, task_id: int, since: int = 0, limit: int | None = None,
                      epoch: int | None = None) -> MessagesRead:
        """Kept messages numbered ``since`` and on (at most ``limit``), of attempt
        ``epoch`` (default: the latest). Reading never consumes."""
        with self._read_tx() as cur:
            task = self._fetch_task(cur, task_id)
            epoch = task.attempt if epoch is None else epoch
            cur.execute("SELECT total, tail FROM message_counts WHERE task_id=? AND epoch=?",
                        (task_id, epoch))
            row = cur.fetchone()
            total, tail = (int(row[0]), int(row[1])) if row else (0, DEFAULT_TAIL)
            cur.execute("SELECT seq, body, raw FROM messages WHERE task_id=? AND epoch=?"
                        " AND seq >= ? ORDER BY seq" + (" LIMIT ?" if limit is not None else ""),
                        (task_id, epoch, since) + ((limit,) if limit is not None else ()))
            items = [Message(int(n), json.loads(body), bool(raw)) for n, body, raw
                     in cur.fetchall()]
            cur.execute("SELECT finished_at FROM attempts WHERE task_id=? AND epoch=?",
                        (task_id, epoch))
            ended = cur.fetchone()
        finished = ended[0] is not None if ended is not None else task.terminal
        return MessagesRead(items, items[-1].number + 1 if items else since,
                            max(0, total - HEAD - tail), finished, total, epoch)

    def message_state(self, task_id: int, epoch: int) -> tuple[int, bool]:
        """(messages emitted, attempt ended): a cheap look for a live stream."""
        with self._read_tx() as cur:
            cur.execute("SELECT a.finished_at, m.total FROM attempts a LEFT JOIN message_counts"
                        " m ON m.task_id = a.task_id AND m.epoch = a.epoch"
                        " WHERE a.task_id = ? AND a.epoch = ?", (task_id, epoch))
            row = cur.fetchone()
        if row is None:
            return 0, True
        return int(row[1] or 0), row[0] is not None
