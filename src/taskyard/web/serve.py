"""Serving the web application: a listening socket (bound here, or handed over by the
task server that started us), uvicorn on it, and ``web.json`` in the home saying
where the panel is (for ``server status`` and ``web login-url``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..config import Settings, split_listen
from ..errors import ConfigError

log = logging.getLogger("taskyard.web")


def state_file(settings: Settings) -> Path:
    return settings.home / "web.json"


def bind(listen: str) -> socket.socket:
    """A listening socket on ``HOST:PORT``; a clear error when that cannot be."""
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every answer on a kept-alive connection waited 40 ms (Nagle's
    # algorithm against the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
    except OSError as exc:  # in use, not ours to take, an unknown host name...
        sock.close()
        why = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {listen}: {why}", field="listen") from None
    sock.set_inheritable(True)
    return sock


def base_url(settings: Settings, sock: socket.socket | None = None) -> str:
    """The panel's address for people: public_url when set, else the listen address
    (a wildcard address shown as this machine's name)."""
    if settings.web_public_url:
        return settings.web_public_url
    if sock is not None:
        host, port = sock.getsockname()[:2]
    else:
        host, port = split_listen(settings.web_listen)
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"http://{shown}:{port}{settings.web_root_path}"


def last_error(settings: Settings) -> str | None:
    """Why the panel a server tried to start did not start (from ``web.json``)."""
    try:
        error = json.loads(state_file(settings).read_text()).get("error")
    except (OSError, ValueError, AttributeError):
        return None
    return str(error) if error else None


def running(settings: Settings) -> dict[str, Any] | None:
    """What ``web.json`` says, if the web process it names is alive."""
    try:
        data = json.loads(state_file(settings).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _fast_parts() -> dict[str, Any]:
    """uvloop and httptools when installed (they are dependencies; without them uvicorn
    falls back to asyncio and h11, about half as fast per request)."""
    import importlib.util

    parts: dict[str, Any] = {}
    if importlib.util.find_spec("uvloop") is not None:
        parts["loop"] = "uvloop"
    if importlib.util.find_spec("httptools") is not None:
        parts["http"] = "httptools"
    return parts


def serve(settings: Settings, *, listen: str | None = None, root_path: str | None = None,
          sock: socket.socket | None = None) -> int:
    """Serve the API and panel until SIGTERM/SIGINT."""
    import uvicorn

    from .app import asgi

    root = settings.web_root_path if root_path is None else root_path
    settings = settings._replace(web_root_path=root)
    if sock is None:
        sock = bind(listen or settings.web_listen)
    url = base_url(settings, sock)
    state = state_file(settings)
    state.write_text(json.dumps({"pid": os.getpid(), "url": url, "root_path": root,
                                 "listen": "{}:{}".format(*sock.getsockname()[:2]),
                                 "started_at": time.time()}))
    config = uvicorn.Config(asgi(settings, root_path=root), log_level="warning",
                            access_log=False, proxy_headers=False, lifespan="off",
                            timeout_graceful_shutdown=3, **_fast_parts())
    server = uvicorn.Server(config)
    log.info("web: serving %s (pid %d)", url, os.getpid())
    print(f"taskyard web: serving {url}/ (API docs {url}/api/v1/docs)", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        try:
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()
        except (OSError, ValueError):
            pass
    return 0


def die_with_parent() -> None:
    """In a web process started by a task server: SIGTERM when that server dies (a
    kill -9 too), so that no panel outlives it and keeps its address."""
    import signal

    parent = os.environ.get("TASKYARD_WEB_PARENT", "")
    if not parent.isdigit():
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)
