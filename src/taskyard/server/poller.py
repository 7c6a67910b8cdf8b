"""A thin epoll wrapper: one callback per file descriptor.

``selectors`` costs a named tuple and a dict lookup per registration and per
event; the server registers three descriptors per task, so this stays bare.
"""

from __future__ import annotations

import select
from collections.abc import Callable

Handler = Callable[[], None]


class Poller:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._handlers: dict[int, Handler] = {}

    def add(self, fd: int, handler: Handler, *, write: bool = False) -> None:
        self._epoll.register(fd, select.EPOLLOUT if write else select.EPOLLIN)
        self._handlers[fd] = handler

    def remove(self, fd: int) -> None:
        """Stop watching ``fd``. Always through ``epoll_ctl(DEL)``, even right before a
        close: were the file still open elsewhere (a forked copy of our descriptors),
        epoll would keep reporting it under this number, and a pidfd opened later with
        the same number would get its events, and its handler reaps and kills."""
        if self._handlers.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except OSError:  # closed already (epoll forgot it then), e.g. by a library
                pass

    def __contains__(self, fd: int) -> bool:
        return fd in self._handlers

    def wait(self, timeout: float) -> None:
        """Run the handler of every ready descriptor; ``timeout`` in seconds."""
        try:
            events = self._epoll.poll(timeout)
        except InterruptedError:
            return
        handlers = self._handlers
        for fd, _ in events:
            handler = handlers.get(fd)
            if handler is not None:  # an earlier handler may have removed it
                handler()
