"""``taskyard tenant add|ls|enable|disable|set``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import ops
from ..model import JSON
from .common import json_flag, parallel, print_json, store, verb_group


def register(sub: Any) -> None:
    verbs = verb_group(sub, "tenant", "tenants: whose tasks run, as which user, how many")
    p = verbs.add_parser("add", help="add a tenant (enabled unless --disabled)")
    p.add_argument("name")
    p.add_argument("--run-as", metavar="USER",
                   help="run its tasks as USER (the server must run as root)")
    p.add_argument("--parallel", type=parallel, metavar="N|unlimited",
                   help="run at most N of its tasks at a time")
    p.add_argument("--disabled", action="store_true",
                   help="add it disabled: its tasks wait until `tenant enable`")
    json_flag(p)
    p.set_defaults(handler=cmd_add)
    p = verbs.add_parser("ls", help="tenants with their live task counts")
    json_flag(p)
    p.set_defaults(handler=cmd_ls)
    p = verbs.add_parser("enable", help="run the tenant's tasks and fire its schedules")
    p.add_argument("name")
    p.add_argument("--run-as", metavar="USER", help="as USER from now on")
    json_flag(p)
    p.set_defaults(handler=cmd_enable)
    p = verbs.add_parser("disable", help="leave its queued tasks and schedules waiting"
                                         " (running ones go on)")
    p.add_argument("name")
    json_flag(p)
    p.set_defaults(handler=cmd_disable)
    p = verbs.add_parser("set", help="set a tenant's parallel limit")
    p.add_argument("name")
    p.add_argument("--parallel", type=parallel, required=True, metavar="N|unlimited")
    json_flag(p)
    p.set_defaults(handler=cmd_set)


def _done(args: argparse.Namespace, tenant: dict[str, JSON]) -> int:
    if args.json:
        print_json(tenant)
    else:
        state = "enabled" if tenant["enabled"] else "disabled"
        extra = f", runs as {tenant['run_as']}" if tenant["run_as"] else ""
        limit = f", parallel {tenant['parallel']}" if tenant["parallel"] else ""
        sys.stdout.write(f"tenant {tenant['name']}: {state}{extra}{limit}\n")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    return _done(args, ops.add_tenant(store(args), args.name, enabled=not args.disabled,
                                      run_as=args.run_as, parallel=args.parallel))


def cmd_enable(args: argparse.Namespace) -> int:
    return _done(args, ops.enable_tenant(store(args), args.name, run_as=args.run_as))


def cmd_disable(args: argparse.Namespace) -> int:
    return _done(args, ops.disable_tenant(store(args), args.name))


def cmd_set(args: argparse.Namespace) -> int:
    return _done(args, ops.set_tenant_parallel(store(args), args.name, args.parallel))


def cmd_ls(args: argparse.Namespace) -> int:
    tenants = store(args).tenants()
    if args.json:
        print_json(tenants)
        return 0
    from .render import safe
    from .tables import WRAP, Col, table

    statuses = ("scheduled", "queued", "running", "paused")
    rows = []
    for t in tenants:
        counts = t["tasks"]
        assert isinstance(counts, dict)
        rows.append((safe(str(t["name"])), "enabled" if t["enabled"] else "disabled",
                     safe(str(t["run_as"] or "-")), str(t["parallel"] or "-"),
                     *(str(counts[s]) for s in statuses)))
    table([Col("TENANT", WRAP, floor=8), Col("STATE"), Col("RUN AS", WRAP, floor=8),
           Col("PARALLEL", right=True), *(Col(s.upper(), right=True) for s in statuses)], rows)
    return 0
