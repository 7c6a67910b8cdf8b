"""systemd's readiness protocol (``Type=notify``), without a dependency.

``READY=1`` once the server claims, ``STOPPING=1`` once it begins to stop: one
datagram each to ``$NOTIFY_SOCKET`` (a path, or an abstract name after ``@``).
The variable is taken out of the environment first, so tasks never see it.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("taskyard.server")


class Notifier:
    """Tells systemd (when it started us with a notify socket) how the server is."""

    def __init__(self) -> None:
        self.address = os.environ.pop("NOTIFY_SOCKET", "")
        if self.address.startswith("@"):
            self.address = "\0" + self.address[1:]
        self.told_stopping = False

    def send(self, message: str) -> None:
        """One datagram; a failure is logged, never fatal (systemd then judges us by
        its timeouts)."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.warning("could not tell systemd %s: %s", message, exc)

    def ready(self) -> None:
        self.send(f"READY=1\nMAINPID={os.getpid()}")

    def stopping(self, mode: str = "") -> None:
        """At the first stop of either ``mode`` (a later ``now`` adds nothing for systemd)."""
        if not self.told_stopping:
            self.told_stopping = True
            self.send("STOPPING=1")
