"""``taskyard web`` (serve the HTTP API and the panel), ``web login-url``, and
``taskyard token ...`` lives in tokens.py."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import json_flag, print_json, settings, store
from .main import envvar


def register(sub: Any) -> None:
    p = sub.add_parser("web", help="serve the HTTP API and the web panel; web login-url"
                                   " prints a one-time login link")
    p.add_argument("action", nargs="?", choices=("serve", "login-url"), default="serve",
                   help="serve (the default), or login-url: a link that opens an admin"
                        " session in the panel (valid 10 minutes, once)")
    envvar(p, "--listen", env="TASKYARD_WEB_LISTEN", metavar="HOST:PORT",
           help="address to serve on (default 127.0.0.1:8470; [web] listen)")
    p.add_argument("--root-path", metavar="/PREFIX",
                   help="the URL prefix a reverse proxy serves the panel under ([web]"
                        " root_path) [env TASKYARD_WEB_ROOT_PATH]")
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a socket from server start
    json_flag(p)
    p.set_defaults(handler=cmd_web)


def cmd_web(args: argparse.Namespace) -> int:
    s = settings(args, web_listen=args.listen, web_root_path=args.root_path)
    if args.action == "login-url":
        return _login_url(args, s)
    if not s.web_listen:
        from ..errors import ConfigError

        raise ConfigError("the panel is turned off (listen = \"\" in [web]): give --listen"
                          " HOST:PORT", field="listen")
    from ..store import require_driver
    from ..web.serve import die_with_parent, serve

    require_driver(s.store_location)
    s.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if args.fd is not None:  # started by the task server, which bound the address
        import socket

        die_with_parent()
        return serve(s, sock=socket.socket(fileno=args.fd))
    return serve(s)


def _login_url(args: argparse.Namespace, s: Any) -> int:
    from .. import access
    from ..ops import actor
    from ..web.serve import base_url, running

    live = running(s)
    base = s.web_public_url or (live["url"] if live else base_url(s))
    ticket = access.login_ticket(store(args), by=actor())
    url = f"{base}/login?ticket={ticket}"
    if args.json:
        print_json({"url": url, "expires_in": access.TICKET_TTL, "panel_running": bool(live)})
    else:
        sys.stdout.write(url + "\n")
        if live is None:
            sys.stderr.write("taskyard: note: no panel is running for this home; start one"
                             " with taskyard web (or taskyard server start)\n")
    return 0
