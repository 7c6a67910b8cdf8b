"""The web process a server starts beside itself (``taskyard web``): the HTTP API and
the panel, as a separate process that only talks to the store.

The server binds the listening socket itself, so that it knows at once whether the
address is free (and says so to ``server start``), and hands it to the child. A
child that exits is started again (at most once every RESTART_AFTER seconds); the
child dies with the server (PR_SET_PDEATHSIG), and is stopped with it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from ..config import Settings
from ..errors import ConfigError

if TYPE_CHECKING:
    import socket

log = logging.getLogger("taskyard.server")

RESTART_AFTER = 5.0  #: seconds between restarts of a web process that keeps exiting


class WebProcess:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sock: socket.socket | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None  #: why the panel does not run, if it does not
        self.url: str | None = None
        self.started_at = 0.0

    def start(self) -> None:
        """Bind the address and start the child; on failure, say why in ``error``."""
        from ..web.serve import base_url, bind

        try:
            self.sock = bind(self.settings.web_listen)
        except ConfigError as exc:
            self.error = str(exc)
            log.warning("the panel did not start: %s", exc)
            self.record(f"the panel did not start: {exc}")
            return
        self.url = base_url(self.settings, self.sock)
        self._spawn()

    def record(self, why: str) -> None:
        """Say in ``web.json`` why this home's server runs no panel (server status)."""
        from ..web.serve import state_file

        state_file(self.settings).write_text(json.dumps({"error": why, "at": time.time()}))

    def _spawn(self) -> None:
        assert self.sock is not None
        fd = self.sock.fileno()
        argv = [sys.executable, "-m", "taskyard", "--home", str(self.settings.home)]
        if self.settings.store:
            argv += ["--store", self.settings.store]
        argv += ["web", "--fd", str(fd)]
        if self.settings.web_root_path:
            argv += ["--root-path", self.settings.web_root_path]
        env = dict(os.environ, TASKYARD_WEB_PARENT=str(os.getpid()))
        env.pop("TASKYARD_READY_FD", None)
        with open(self.settings.home / "web.log", "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=out, pass_fds=(fd,), env=env, cwd="/")
        self.started_at = time.monotonic()
        from ..web.serve import state_file  # the child writes it too, once it serves

        state_file(self.settings).write_text(json.dumps({
            "pid": self.proc.pid, "url": self.url, "root_path": self.settings.web_root_path,
            "listen": self.settings.web_listen, "started_at": time.time()}))
        log.info("web process %d serving %s", self.proc.pid, self.url)

    def check(self) -> None:
        """At a heartbeat: start the child again if it exited (not too often)."""
        if self.proc is None or self.proc.poll() is None:
            return
        if time.monotonic() - self.started_at < RESTART_AFTER:
            return
        log.warning("web process %d exited with code %s; starting it again (log: %s)",
                    self.proc.pid, self.proc.returncode, self.settings.home / "web.log")
        self._spawn()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        from ..web.serve import running, state_file

        if self.proc is not None and running(self.settings) is None:
            state_file(self.settings).unlink(missing_ok=True)  # it named our child

    def ready_line(self) -> str:
        """What ``server start`` is told about the panel."""
        if self.error is not None:
            return f"web-error: {self.error}"
        return f"web: {self.url}" if self.url else "web: off"

