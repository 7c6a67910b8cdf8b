"""``taskyard cron add|ls|show|rm|pause|resume|run``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import ops
from ..model import Schedule, iso
from .common import json_flag, print_json, seconds, store, verb_group
from .tasks import spec_from, task_options


def register(sub: Any) -> None:
    verbs = verb_group(sub, "cron", "cron schedules: a task at every tick")
    p = verbs.add_parser(
        "add", help="add a schedule",
        description="Submit ARGV (after --) at every tick of EXPR: five fields (minute hour"
                    " day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly,"
                    " @yearly. Exactly one task per tick, whichever server fires it.")
    p.add_argument("schedule", metavar="NAME")
    p.add_argument("expr", metavar="EXPR")
    p.add_argument("--tz", metavar="ZONE",
                   help="IANA time zone the expression is read in (default: this machine's)")
    p.add_argument("--catch-up", choices=("none", "one", "all"), default="one",
                   help="ticks missed while no server ran: none, the latest one (default),"
                        " or all of them")
    p.add_argument("--max-lag", type=seconds, metavar="S",
                   help="a missed tick fires only within S seconds of its time")
    p.add_argument("--paused", action="store_true", help="add it paused")
    task_options(p)
    json_flag(p)
    p.add_argument("argv", nargs="*", help="-- PROGRAM ARG...")
    p.set_defaults(handler=cmd_add)
    p = verbs.add_parser("ls", help="schedules with their next tick")
    json_flag(p)
    p.set_defaults(handler=cmd_ls)
    for verb, text, handler in (
            ("show", "one schedule, with the task it submits", cmd_show),
            ("rm", "remove a schedule (the tasks it fired stay)", cmd_rm),
            ("pause", "let ticks pass without firing", cmd_pause),
            ("resume", "fire again from the next tick (missed ticks are not caught up)",
             cmd_resume),
            ("run", "fire its task once, now", cmd_run)):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("schedule", metavar="NAME")
        json_flag(p)
        p.set_defaults(handler=handler)


def _print(args: argparse.Namespace, sched: Schedule) -> int:
    if args.json:
        print_json(sched.to_json())
    else:
        state = "paused" if sched.paused else f"next {_when(sched.next_at)}"
        sys.stdout.write(f"schedule {sched.name}: {sched.expr} ({sched.tz}), {state}\n")
    return 0


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    from datetime import datetime

    # Ticks fall on whole minutes: no seconds (a narrower column).
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def cmd_add(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    return _print(args, ops.add_schedule(store(args), args.schedule, args.expr, spec,
                                         tz=args.tz, catch_up=args.catch_up,
                                         max_lag=args.max_lag, paused=args.paused))


def cmd_show(args: argparse.Namespace) -> int:
    sched = store(args).get_schedule(args.schedule)
    if args.json:
        print_json(sched.to_json())
        return 0
    from .render import what

    for key, value in (("name", sched.name), ("expr", sched.expr), ("tz", sched.tz),
                       ("tenant", sched.tenant), ("state", "paused" if sched.paused else "active"),
                       ("next", _when(sched.next_at)), ("catch-up", sched.catch_up),
                       ("max-lag", "-" if sched.max_lag is None else f"{sched.max_lag:g}s"),
                       ("fired", str(sched.fired)), ("queue", sched.spec.queue),
                       ("command", what(sched.spec)), ("created", iso(sched.created_at))):
        sys.stdout.write(f"{key:9} {value}\n")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    found = store(args).schedules()
    if args.json:
        print_json([s.to_json() for s in found])
        return 0
    from .render import plain_table, safe, what

    plain_table(("NAME", "EXPR", "TZ", "NEXT", "FIRED", "TENANT", "COMMAND"),
                [(safe(s.name), safe(s.expr), s.tz, "paused" if s.paused else _when(s.next_at),
                  str(s.fired), safe(s.tenant), safe(what(s.spec))[:60]) for s in found],
                wrap={"COMMAND"})
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    store(args).remove_schedule(args.schedule)
    if args.json:
        print_json({"removed": args.schedule})
    else:
        sys.stdout.write(f"schedule {args.schedule}: removed\n")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    return _print(args, ops.pause_schedule(store(args), args.schedule, True))


def cmd_resume(args: argparse.Namespace) -> int:
    return _print(args, ops.pause_schedule(store(args), args.schedule, False))


def cmd_run(args: argparse.Namespace) -> int:
    task = ops.run_schedule(store(args), args.schedule)
    if args.json:
        print_json(task.to_json())
    else:
        sys.stdout.write(f"{task.id}\n")
    return 0
