"""``taskyard token create|ls|revoke``: who may use the HTTP API and the panel."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import access, validate
from ..model import iso
from .common import json_flag, print_json, store, utc, utc_flag, verb_group


def register(sub: Any) -> None:
    verbs = verb_group(sub, "token", "API and panel tokens: create, list, revoke")

    p = verbs.add_parser("create", help="make a token; its secret is printed once")
    p.add_argument("--role", required=True, choices=access.ROLES,
                   help="viewer reads; operator also submits and steers tasks; admin also"
                        " manages queues, schedules, tenants, tokens and servers")
    p.add_argument("--tenant", help="see and touch only this tenant's tasks and schedules")
    p.add_argument("--name", help="a name to revoke it by (default: ROLE-xxxxxx)")
    p.add_argument("--expires", metavar="DURATION",
                   help="refuse it after this long: 30d, 12h, 90m... (default: never)")
    json_flag(p)
    p.set_defaults(handler=cmd_create)

    p = verbs.add_parser("ls", help="list tokens (never their secrets)")
    utc_flag(p)
    json_flag(p)
    p.set_defaults(handler=cmd_ls)

    p = verbs.add_parser("revoke", help="refuse a token from now on, and end its panel"
                                        " sessions")
    p.add_argument("token", metavar="ID|NAME")
    json_flag(p)
    p.set_defaults(handler=cmd_revoke)


def cmd_create(args: argparse.Namespace) -> int:
    expires = validate.parse_duration(args.expires, "expires") if args.expires else None
    token, secret = access.create_token(store(args), args.role, tenant=args.tenant,
                                        name=args.name, expires_in=expires,
                                        by=_actor())
    if args.json:
        print_json({"id": token.id, "name": token.name, "role": token.role,
                    "tenant": token.tenant, "token": secret,
                    "expires_at": iso(token.expires_at)})
        return 0
    sys.stdout.write(f"{secret}\n")
    sys.stderr.write(f"token {token.id} ({token.name}, {token.role}"
                     f"{', tenant ' + token.tenant if token.tenant else ''}): shown this once,"
                     " only its hash is kept\n")
    return 0


def _actor() -> str:
    from ..ops import actor

    return actor()


def cmd_ls(args: argparse.Namespace) -> int:
    tokens = store(args).tokens()
    if args.json:
        print_json([t.to_json() for t in tokens])
        return 0
    from .render import clock, safe
    from .tables import FIXED, TIME, WRAP, Col, table

    rows = []
    for t in tokens:
        state = ("revoked" if t.revoked_at else "expired" if not t.valid(_now())
                 else "login" if t.login else "active")
        rows.append((str(t.id), safe(t.name), t.role, safe(t.tenant or ""), state,
                     clock(t.expires_at, utc(args)) if t.expires_at else "never",
                     clock(t.used_at, utc(args)) if t.used_at else ""))
    table([Col("ID", FIXED, right=True), Col("NAME", WRAP, floor=8), Col("ROLE"),
           Col("TENANT", WRAP, floor=6), Col("STATE"), Col("EXPIRES", TIME),
           Col("USED", TIME)], rows)

    return 0


def _now() -> float:
    import time

    return time.time()


def cmd_revoke(args: argparse.Namespace) -> int:
    token = store(args).revoke_token(args.token)
    if args.json:
        print_json(token.to_json())
    else:
        sys.stdout.write(f"revoked token {token.id} ({token.name})\n")
    return 0
