"""``taskyard queue ls|set|pause|resume``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import ops, validate
from .common import json_flag, parallel, print_json, store, verb_group


def register(sub: Any) -> None:
    verbs = verb_group(sub, "queue", "list, limit, pause and resume queues")
    p = verbs.add_parser("ls", help="queues with their task counts")
    json_flag(p)
    p.set_defaults(handler=cmd_ls)
    p = verbs.add_parser("set", help="set a queue's parallel limit")
    p.add_argument("name")
    p.add_argument("--parallel", required=True, type=parallel, metavar="N|unlimited",
                   help="run at most N of its tasks at a time (1: one after another, in"
                        " submit order)")
    json_flag(p)
    p.set_defaults(handler=cmd_set)
    for verb, text in (("pause", "claim nothing more from the queue (running tasks go on)"),
                       ("resume", "claim from the queue again")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("name")
        json_flag(p)
        p.set_defaults(handler=cmd_pause if verb == "pause" else cmd_resume)


def cmd_ls(args: argparse.Namespace) -> int:
    queues = store(args).queues()
    if args.json:
        print_json(queues)
        return 0
    from .render import safe
    from .tables import WRAP, Col, table

    statuses = ("scheduled", "queued", "running", "paused", "succeeded", "failed", "stopped")
    rows = []
    for q in queues:
        counts = q["tasks"]
        assert isinstance(counts, dict)
        rows.append((safe(str(q["name"])), "paused" if q["paused"] else "active",
                     "-" if q["parallel"] is None else str(q["parallel"]),
                     *(str(counts[s]) for s in statuses)))
    # Short headings, so that ten columns fit 80 (--json has the full names).
    heads = ("QUEUE", "STATE", "LIMIT", "SCHED", "QUEUED", "RUN", "PAUSED", "OK", "FAILED",
             "STOPPED")
    table([Col(heads[0], WRAP, floor=8), Col(heads[1]), *(Col(h, right=True) for h in heads[2:])],
          rows)
    return 0


def _done(args: argparse.Namespace, text: str) -> int:
    """The queue as ``queue ls --json`` shows it, or ``text``."""
    if args.json:
        print_json(next(q for q in store(args).queues() if q["name"] == args.name))
    else:
        sys.stdout.write(text + "\n")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    ops.set_queue_parallel(store(args), args.name, args.parallel)
    limit = "unlimited" if args.parallel is None else args.parallel
    return _done(args, f"queue {args.name}: parallel {limit}")


def cmd_pause(args: argparse.Namespace) -> int:
    ops.pause_queue(store(args), validate.check_name(args.name, "queue") or "")
    return _done(args, f"queue {args.name}: paused")


def cmd_resume(args: argparse.Namespace) -> int:
    ops.resume_queue(store(args), validate.check_name(args.name, "queue") or "")
    return _done(args, f"queue {args.name}: active")
