"""``taskyard cron add|ls|show|rm|pause|resume|run``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import ops
from ..model import Schedule
from .common import json_flag, print_json, seconds, store, utc, utc_flag, verb_group
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
    utc_flag(p)
    json_flag(p)
    p.add_argument("argv", nargs="*", help="-- PROGRAM ARG...")
    p.set_defaults(handler=cmd_add)
    p = verbs.add_parser("ls", help="schedules with their next tick")
    utc_flag(p)
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
        if verb in ("show", "pause", "resume"):  # they print the next tick
            utc_flag(p)
        json_flag(p)
        p.set_defaults(handler=handler)


def _print(args: argparse.Namespace, sched: Schedule) -> int:
    if args.json:
        print_json(sched.to_json())
    else:
        state = "paused" if sched.paused else f"next {_when(sched.next_at, utc(args))}"
        sys.stdout.write(f"schedule {sched.name}: {sched.expr} ({sched.tz}), {state}\n")
    return 0


def _when(ts: float | None, in_utc: bool) -> str:
    """A tick: to the minute (ticks fall on whole minutes), with the zone it is read in."""
    if ts is None:
        return "-"
    from datetime import UTC, datetime

    from .render import clock

    zone = "UTC" if in_utc else datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Z")
    return f"{clock(ts, in_utc, minutes=True)} {zone}"


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
    from .render import clock, safe, what
    from .tables import fields

    fields([(key, safe(value)) for key, value in (
        ("name", sched.name), ("expr", sched.expr), ("tz", sched.tz),
        ("tenant", sched.tenant), ("state", "paused" if sched.paused else "active"),
        ("next", _when(sched.next_at, utc(args))), ("catch-up", sched.catch_up),
        ("max-lag", "-" if sched.max_lag is None else f"{sched.max_lag:g}s"),
        ("fired", str(sched.fired)), ("queue", sched.spec.queue),
        ("command", what(sched.spec)), ("created", clock(sched.created_at, utc(args))))], key_style="", key_right=False)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    found = store(args).schedules()
    if args.json:
        print_json([s.to_json() for s in found])
        return 0
    from .render import safe, what
    from .tables import CUT, TIME, WRAP, Col, table

    # The command gives way first (cron show has it whole); names, the expression and the
    # zone wrap rather than be cut; the next tick stays whole.
    table([Col("NAME", WRAP, floor=16), Col("EXPR", WRAP, floor=30), Col("TZ", WRAP, floor=30),
           Col("NEXT", TIME), Col("FIRED", right=True), Col("TENANT", WRAP, floor=8),
           Col("COMMAND", CUT, floor=12)],
          [(safe(s.name), safe(s.expr), s.tz,
            "paused" if s.paused else _when(s.next_at, utc(args)), str(s.fired), safe(s.tenant),
            what(s.spec)) for s in found])
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
