"""Server entry: the pidfile lock, readiness, signals, recovery, the loop, a clean stop.

The pidfile is locked with ``flock`` for the server's whole life, so exactly
one server runs per home, and a pidfile left by a dead process (its lock went
with it) never blocks a start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

from .. import logs
from ..config import Settings
from ..errors import ConfigError, Fenced, StoreError, StoreUnavailable, TaskyardError, UserError
from ..store import open_store
from ..store.base import Instance
from ..store.sqlite import BUSY_TIMEOUT_MS
from . import privileges, procs, recovery
from .loop import Server
from .pidfile import lock_pidfile
from .sdnotify import Notifier
from .webproc import WebProcess

log = logging.getLogger("taskyard.server")


def _setup_logging(settings: Settings, stream: IO[str]) -> None:
    """The log goes to ``log_file``; in the foreground with none set (systemd), to
    ``stream``."""
    target = settings.log_file or "-"
    try:
        logs.setup(settings.log_format, settings.log_level, target, stream=stream,
                   max_mib=settings.log_max_mib, backups=settings.log_backups)
    except OSError as exc:
        raise ConfigError(f"log_file {target} cannot be written: {exc.strerror or exc}",
                          field="log_file") from None


class _Signals:
    """SIGTERM/SIGINT: first a warm stop, then a stop now. Delivered through a socket
    so the selector wakes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.rsock, self.wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self.wsock.setblocking(False)
        signal.set_wakeup_fd(self.wsock.fileno(), warn_on_full_buffer=False)
        # Handled, not ignored: an ignored signal would stay ignored in every task.
        # SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM would kill the server by default and leave
        # its tasks unsupervised; they are logged and otherwise ignored.
        for sig in (signal.SIGTERM, signal.SIGINT) + _IGNORED:
            signal.signal(sig, lambda *_: None)
        server.poller.add(self.rsock.fileno(), self.on_signal)

    def on_signal(self) -> None:
        with contextlib.suppress(BlockingIOError):
            for number in self.rsock.recv(64):
                if number in (signal.SIGTERM, signal.SIGINT):
                    mode = "now" if self.server.stopping else "warm"
                    log.info("received %s", signal.Signals(number).name)
                    self.server.stop(mode)
                elif number in _IGNORED:
                    log.info("received %s: ignored (SIGTERM stops the server)",
                             signal.Signals(number).name)


_IGNORED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)


def serve(settings: Settings, ready: IO[bytes] | None = None) -> int:
    """Run a server in this process until it is stopped. Returns the exit code.

    ``ready`` (the daemonizing parent's pipe) gets ``ok`` once the server runs,
    or ``error: ...`` if it could not start; systemd (``Type=notify``) gets
    ``READY=1`` then.
    """
    notifier = Notifier()
    try:
        who = privileges.identity_for(settings)
        lock = lock_pidfile(settings.pidfile)
    except UserError as exc:  # already running, an unknown run_as user
        _tell(ready, f"error: {exc}")
        raise
    try:
        _setup_logging(settings, sys.stderr)
        _become(settings, who)
        return _serve_locked(settings, lock, ready, notifier)
    except TaskyardError as exc:
        _tell(ready, f"error: {exc}")
        raise
    finally:
        # Past the loop, a late SIGTERM must not turn a clean exit into death by signal
        # (the interpreter restores default handlers while it shuts down; not ignored ones).
        for sig in (signal.SIGTERM, signal.SIGINT) + _IGNORED:
            signal.signal(sig, signal.SIG_IGN)
        # Emptied, not unlinked: unlinking a locked pidfile lets two servers lock two inodes.
        with contextlib.suppress(OSError):
            lock.seek(0)
            lock.truncate()
        lock.close()


def _become(settings: Settings, who: privileges.Identity | None) -> None:
    """With the home's lock held: drop to the ``run_as`` user (before anything is
    opened or claimed), then change into the ``cwd`` setting."""
    if who is not None:
        privileges.give_home(settings, who)
        privileges.drop(who)
        privileges.check_usable(settings, who)
    if settings.cwd:
        try:
            os.chdir(settings.cwd)
        except OSError as exc:
            raise ConfigError(f"cwd {settings.cwd}: {exc.strerror}", field="cwd") from None


def _tell(ready: IO[bytes] | None, message: str) -> None:
    if ready is not None and not ready.closed:
        with contextlib.suppress(OSError):
            ready.write(message.encode() + b"\n")
            ready.close()


def _write_pidfile(lock: IO[str], content: str) -> None:
    lock.seek(0)
    lock.truncate()
    lock.write(content + "\n")
    lock.flush()


T = TypeVar("T")


def _patiently(write: Callable[[], T], limit: float = BUSY_TIMEOUT_MS / 1000) -> T:
    """A write outside the loop (start, stop) tried again while the store is out of
    reach for now (a lock held elsewhere), for as long as a client would wait."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return write()
        except StoreUnavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _last_transitions(server: Server) -> None:
    """The transitions of the stop into the log; a store out of reach at this point is
    no reason to make a clean stop a failed one."""
    try:
        server.transitions.follow(server.store, server.cron_leader)
    except StoreError as exc:
        log.warning("the last transitions were not logged: %s", exc)


def _serve_locked(settings: Settings, lock: IO[str], ready: IO[bytes] | None,
                  notifier: Notifier) -> int:
    instance_id = secrets.token_hex(6)
    _write_pidfile(lock, str(os.getpid()))
    settings = settings._replace(slots=procs.slots_within_fd_limit(settings.effective_slots,
                                                             workers=bool(settings.imports)))
    # A server frozen inside a transaction (SIGSTOP, a stalled VM) holds the locks the
    # others wait for. They must get them back well within half a lease: a server that
    # was itself silent that long judges no peer by silence for the next lease, which
    # would give the frozen one two leases to wake up unfenced.
    store = open_store(settings.store_location, synchronous=settings.synchronous,
                       application_name="taskyard-server", hold_limit=settings.lease / 4,
                       server=True)
    if settings.status_dir:  # a status dir that cannot be written: say so now
        from .statusfiles import check_dir

        check_dir(settings.status_dir)
    host, boot = procs.hostname(), procs.boot_id()
    now = time.time()
    _patiently(lambda: store.register(Instance(instance_id, host, boot, os.getpid(),
                                               settings.effective_slots, now, now, None, None)))
    # Only now name the instance: `server stop` addresses it through the store.
    _write_pidfile(lock, f"{os.getpid()} {instance_id}")
    server = Server(settings, store, instance_id)
    web: WebProcess | None = None
    server.listen()
    _Signals(server)
    try:
        server.status.follow(store.queue_status_dirs())
        _patiently(server.hooks.publish_defaults)
        server.transitions.start(store)  # crashes recorded next are logged
        crashed = server.status_crashed if server.status.enabled else None
        recovered = _patiently(lambda: recovery.recover(store, instance_id, host, boot,
                                                        time.time(), settings.lease,
                                                        on_crashed=crashed))
        me: dict[str, Any] = {"server": instance_id, "host": host, "pid": os.getpid()}
        logs.log_event(log, "server.start", f"server {instance_id} started: pid {os.getpid()},"
                       f" {server.slots} slot(s), home {settings.home}"
                       + (f", {recovered} crashed attempt(s) recorded" if recovered else ""),
                       **me, slots=server.slots, home=str(settings.home), crashed=recovered)
        log.info("%s", server.cgroups.summary())
        web = WebProcess(settings)
        if settings.web_listen:
            web.start()
            server.on_heartbeat.append(web.check)
        else:
            web.record("the panel is off (--no-web, or listen = \"\" in [web])")
        _tell(ready, "ok\n" + web.ready_line() if settings.web_listen else "ok")
        notifier.ready()
        server.on_stop.append(notifier.stopping)
        server.run_forever()
        _last_transitions(server)
        _patiently(lambda: store.unregister(instance_id, time.time()))
        logs.log_event(log, "server.stop", f"server {instance_id} stopped", **me)
        return 0
    except Fenced as exc:
        logs.log_event(log, "server.fenced", "fenced off, stopping and killing every task this"
                       f" server ran: {exc}", level=logging.CRITICAL, server=instance_id,
                       host=host, pid=os.getpid(), error=str(exc))
        server.kill_all()
        _tell(ready, f"error: {exc}")
        return 1
    except StoreError as exc:
        logs.log_event(log, "server.store_failed", "store write failed, stopping so memory and"
                       f" disk cannot diverge: {exc}", level=logging.CRITICAL,
                       server=instance_id, host=host, pid=os.getpid(), error=str(exc))
        server.kill_all()
        _tell(ready, f"error: store failure: {exc}")
        return 1
    finally:
        server.cgroups.close(settings.home)
        server.status.close()
        server.hooks.close()
        if web is not None:
            web.stop()
        server.unlisten()
        store.close()

