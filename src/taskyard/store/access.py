"""Who may use the HTTP API and the panel: tokens, panel sessions, one-time login
tickets, and the Idempotency-Key record of submits over HTTP.

Secrets never reach the store: callers pass their SHA-256 (``taskyard.access``
makes and hashes them), so a copy of the store gives nobody a way in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import NotFound, TransitionError
from ..model import JSON, Task, TaskSpec, iso
from . import rows
from .sql import Cursor, SqlStoreBase

TOKEN_COLUMNS = ("id, name, role, tenant, created_at, created_by, expires_at, revoked_at,"
                 " used_at, login")
#: Idempotency keys are remembered this long (seconds).
IDEMPOTENCY_TTL = 24 * 3600
#: A bulk action's dry run can be acted on this long (seconds).
SNAPSHOT_TTL = 3600


class Token(NamedTuple):
    """A token as stored (without its secret, which is never kept)."""

    id: int
    name: str
    role: str
    tenant: str | None
    created_at: float
    created_by: str
    expires_at: float | None
    revoked_at: float | None
    used_at: float | None
    login: bool  #: made by ``taskyard web login-url`` for one panel session

    def valid(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_json(self) -> dict[str, JSON]:
        return {"id": self.id, "name": self.name, "role": self.role, "tenant": self.tenant,
                "created_at": iso(self.created_at), "created_by": self.created_by,
                "expires_at": iso(self.expires_at), "revoked_at": iso(self.revoked_at),
                "used_at": iso(self.used_at), "login": self.login}


class Session(NamedTuple):
    token: Token
    csrf: str
    expires_at: float


def _token(row: Sequence[Any]) -> Token:
    return Token(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                 bool(row[9]))


class AccessStore(SqlStoreBase):
    """Tokens, sessions, tickets and idempotency keys (mixed into the SQL stores)."""

    # -- tokens -----------------------------------------------------------------------

    def add_token(self, name: str, role: str, tenant: str | None, secret_hash: str,
                  expires_at: float | None, *, by: str, login: bool = False) -> Token:
        now = time.time()
        with self._tx() as cur:
            if tenant is not None:
                self._require_tenant(cur, tenant)
            cur.execute("INSERT INTO tokens (name, role, tenant, secret_hash, created_at,"
                        " created_by, expires_at, login) VALUES (?,?,?,?,?,?,?,?)"
                        " ON CONFLICT (name) DO NOTHING",
                        (name, role, tenant, secret_hash, now, by, expires_at, int(login)))
            if cur.rowcount == 0:
                raise TransitionError(f"a token named {name!r} exists already", field="name")
            cur.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE name=?", (name,))
            return _token(cur.fetchone())

    def tokens(self) -> list[Token]:
        """Every token, newest first (login tokens of the panel included)."""
        with self._read_tx() as cur:
            cur.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id DESC")
            return [_token(r) for r in cur.fetchall()]

    def find_token(self, id_or_name: str | int) -> Token:
        """A token by id (a number) or name."""
        with self._read_tx() as cur:
            return self._find_token(cur, id_or_name)

    def _find_token(self, cur: Cursor, id_or_name: str | int) -> Token:
        if isinstance(id_or_name, int) or id_or_name.isdigit():
            cur.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id=?", (int(id_or_name),))
        else:
            cur.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE name=?", (id_or_name,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no token {id_or_name!r}", field="token")
        return _token(row)

    def token_by_secret(self, secret_hash: str) -> Token | None:
        with self._read_tx() as cur:
            cur.execute(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash=?", (secret_hash,))
            row = cur.fetchone()
        return _token(row) if row is not None else None

    def revoke_token(self, id_or_name: str | int) -> Token:
        """Refuse the token from now on, and end the panel sessions opened with it."""
        now = time.time()
        with self._tx() as cur:
            token = self._find_token(cur, id_or_name)
            cur.execute("UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL",
                        (now, token.id))
            cur.execute("DELETE FROM web_sessions WHERE token_id=?", (token.id,))
            return self._find_token(cur, token.id)

    def touch_token(self, token_id: int, now: float) -> None:
        """Record a use (callers throttle this: it is a write)."""
        with self._tx() as cur:
            cur.execute("UPDATE tokens SET used_at=? WHERE id=?", (now, token_id))

    # -- panel sessions and login tickets ---------------------------------------------

    def add_session(self, id_hash: str, token_id: int, csrf: str, expires_at: float) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO web_sessions (id_hash, token_id, csrf, created_at,"
                        " expires_at) VALUES (?,?,?,?,?)",
                        (id_hash, token_id, csrf, time.time(), expires_at))

    def session(self, id_hash: str) -> Session | None:
        """The session and its token, as they are (the caller checks both are valid)."""
        cols = ", ".join(f"t.{c}" for c in TOKEN_COLUMNS.split(", "))
        with self._read_tx() as cur:
            cur.execute(f"SELECT {cols}, s.csrf, s.expires_at FROM web_sessions s"
                        " JOIN tokens t ON t.id = s.token_id WHERE s.id_hash=?", (id_hash,))
            row = cur.fetchone()
        if row is None:
            return None
        return Session(_token(row[:10]), row[10], row[11])

    def end_session(self, id_hash: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM web_sessions WHERE id_hash=?", (id_hash,))

    def add_ticket(self, id_hash: str, token_id: int, expires_at: float) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO login_tickets (id_hash, token_id, expires_at)"
                        " VALUES (?,?,?)", (id_hash, token_id, expires_at))

    def redeem_ticket(self, id_hash: str, now: float) -> int | None:
        """The ticket's token id, once: a used, expired or unknown ticket gives None."""
        with self._tx() as cur:
            cur.execute("UPDATE login_tickets SET used_at=? WHERE id_hash=? AND used_at IS NULL"
                        " AND expires_at > ? RETURNING token_id", (now, id_hash, now))
            row = cur.fetchone()
        return int(row[0]) if row is not None else None

    def prune_access(self, now: float) -> None:
        """Forget what has expired: sessions, tickets, idempotency keys, and login
        tokens whose sessions are all gone."""
        with self._tx() as cur:
            cur.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
            cur.execute("DELETE FROM login_tickets WHERE expires_at <= ?", (now,))
            cur.execute("DELETE FROM idempotency WHERE created_at <= ?", (now - IDEMPOTENCY_TTL,))
            cur.execute("DELETE FROM tokens WHERE login=1 AND expires_at <= ?", (now,))
            cur.execute("DELETE FROM bulk_snapshots WHERE created_at <= ?",
                        (now - SNAPSHOT_TTL,))

    # -- bulk actions -------------------------------------------------------------------

    def add_snapshot(self, snapshot_id: str, token_id: int, action: str,
                     ids: Sequence[int]) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO bulk_snapshots (id, token_id, action, ids, created_at)"
                        " VALUES (?,?,?,?,?)",
                        (snapshot_id, token_id, action, rows.dumps(list(ids)), time.time()))

    def snapshot(self, snapshot_id: str, token_id: int, action: str) -> list[int]:
        """The task ids a dry run of ``action`` by this token showed (within the hour)."""
        with self._read_tx() as cur:
            cur.execute("SELECT ids FROM bulk_snapshots WHERE id=? AND token_id=? AND action=?"
                        " AND created_at > ?",
                        (snapshot_id, token_id, action, time.time() - SNAPSHOT_TTL))
            row = cur.fetchone()
        if row is None:
            raise NotFound("no such snapshot for this action (they last an hour):"
                           " make a new dry run", field="snapshot")
        return [int(i) for i in json.loads(row[0])]

    # -- tenants of tasks ---------------------------------------------------------------

    def task_tenants(self, ids: Sequence[int]) -> dict[int, str]:
        """The tenant of each of ``ids`` that exists (to show a tenant's token only the
        tasks it may see)."""
        wanted, found = sorted(set(ids)), {}
        with self._read_tx() as cur:
            for start in range(0, len(wanted), 500):
                part = wanted[start:start + 500]
                cur.execute(f"SELECT id, tenant FROM tasks WHERE id IN ({','.join('?' * len(part))})",
                            part)
                found.update({int(i): str(t) for i, t in cur.fetchall()})
        return found

    # -- idempotent submits -----------------------------------------------------------

    def submit_once(self, spec: TaskSpec, *, by: str, token_id: int,
                    key: str) -> tuple[Task, bool]:
        """Submit ``spec`` unless this token submitted with ``key`` in the last 24 h:
        then that task (if it still exists). Returns the task and whether it is new."""
        now = time.time()
        with self._tx() as cur:
            if self.KEY_LOCK:  # concurrent retries of one request take turns
                cur.execute(self.KEY_LOCK, (f"idempotency:{token_id}:{key}",))
            cur.execute("SELECT task_id, created_at FROM idempotency WHERE token_id=? AND key=?"
                        f"{self.ROW_LOCK}", (token_id, key))
            row = cur.fetchone()
            if row is not None and row[1] > now - IDEMPOTENCY_TTL:
                cur.execute(f"SELECT {rows.TASK_COLUMNS} FROM tasks WHERE id=?", (row[0],))
                found = cur.fetchone()
                if found is not None:
                    return rows.task(found), False
            task = self._submit(cur, spec, by=by)
            cur.execute("INSERT INTO idempotency (token_id, key, task_id, created_at)"
                        " VALUES (?,?,?,?) ON CONFLICT (token_id, key) DO UPDATE"
                        " SET task_id=excluded.task_id, created_at=excluded.created_at",
                        (token_id, key, task.id, now))
            return task, True
