"""Applying users' control requests to the attempts a server owns."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from ..lifecycle import Reason, Status
from ..model import Request
from .child import Child

if TYPE_CHECKING:
    from .loop import Server


#: Bytes sent to a task's stdin that it has not read yet, held by the server at most.
STDIN_BACKLOG = 64 * 1024 * 1024


def apply(server: Server, c: Child, request: Request, now: float) -> str | None:
    """Apply ``request`` to ``c``; returns why it was rejected, or None."""
    payload = request.payload if isinstance(request.payload, dict) else {}
    kind = request.kind
    if kind == "kill":
        return _kill(server, c, payload, now)
    if kind in ("pause", "resume"):
        return _pause(server, c, kind == "pause")
    if kind in ("stdin", "eof"):
        return _stdin(server, c, kind, payload)
    return f"unknown request {kind!r}"


def _kill(server: Server, c: Child, payload: dict[str, object], now: float) -> str | None:
    was_paused = c.paused
    raw = payload.get("signal", signal.SIGTERM)
    sig = int(raw) if isinstance(raw, int | str) else int(signal.SIGTERM)
    grace = now + server.settings.kill_grace if payload.get("escalate") else None
    c.kill(sig, Reason.KILLED, escalate_at=grace)
    if was_paused and not c.paused:
        server.store.set_paused(server.me, c.task_id, c.epoch, False, server.by)
    return None


def _pause(server: Server, c: Child, pause: bool) -> str | None:
    """Stop or continue the group, then record it. A request that finds the group
    already so is one applied again: its first application signalled the group but
    lost its store write (a lost connection), or two users asked at once. It is done
    once the store says so too; the write is made now if it was lost (else the store
    would say ``paused`` of a running task, or the reverse, for good)."""
    if c.paused != pause:
        c.signal_group(signal.SIGSTOP if pause else signal.SIGCONT)
        c.paused = pause
    else:
        recorded = server.store.get(c.task_id).status
        if recorded is (Status.PAUSED if pause else Status.RUNNING):
            return None
        if recorded is not (Status.RUNNING if pause else Status.PAUSED):
            return f"it is {recorded}"
    server.store.set_paused(server.me, c.task_id, c.epoch, pause, server.by)
    return None


def _stdin(server: Server, c: Child, kind: str, payload: dict[str, object]) -> str | None:
    if c.stdin_fd is None:
        return "its stdin is closed"
    if kind == "eof":
        c.stdin_eof = True
    else:
        data = bytes.fromhex(str(payload.get("data", "")))
        if len(c.stdin_buf) + len(data) > STDIN_BACKLOG:
            return (f"its stdin already holds {len(c.stdin_buf)} bytes it has not read;"
                    " send more once it has")
        c.stdin_buf += data
    fd = c.stdin_fd
    c.write_stdin()
    if c.stdin_fd is not None and c.stdin_buf and fd not in server.poller:
        server.poller.add(fd, lambda: server.on_stdin_writable(c, fd), write=True)
    return None
