"""``taskyard web`` with the time spent inside the server on each answer: the same
command (``python bench/web_timed.py --home H web --listen ...``), whose application
is wrapped in one more ASGI layer that adds ``Server-Timing: app;dur=MS`` (from the
request reaching the application, the Guard included, to the answer's start; for the
pages and JSON answers measured here the body is complete by then).

Used by bench/web.py to split a round trip into the server's share and the rest
(HTTP parsing in uvicorn, the loopback, the client).

With ``BENCH_WEB_NODELAY=1`` the listening socket also gets ``TCP_NODELAY`` (which
the connections it accepts inherit): the fix proposed for ``taskyard.web.serve.bind``,
whose ``socket.socket(family, SOCK_STREAM)`` has protocol 0, so asyncio's transports
do not turn Nagle's algorithm off (``_set_nodelay`` requires ``proto ==
IPPROTO_TCP``), and an answer written in two pieces (uvicorn writes the head, then
the body) waits for the client's delayed ACK: about 40 ms on Linux.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def timed(app: ASGIApp) -> ASGIApp:
    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                message["headers"] = [*message.get("headers", []),
                                      (b"server-timing", f"app;dur={ms:.3f}".encode())]
            await send(message)

        await app(scope, receive, timed_send)

    return wrapper


def main() -> int:
    from taskyard.cli.main import main as cli
    from taskyard.web import app as web_app

    plain = web_app.asgi

    def asgi(*args: Any, **kwargs: Any) -> ASGIApp:
        return timed(plain(*args, **kwargs))

    web_app.asgi = asgi  # serve() imports it when it is called
    if os.environ.get("BENCH_WEB_NODELAY") == "1":
        from taskyard.web import serve

        plain_bind = serve.bind

        def bind(listen: str) -> socket.socket:
            sock = plain_bind(listen)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

        serve.bind = bind
    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
