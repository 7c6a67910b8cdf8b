"""``taskyard queue ls|set|pause|resume``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import ops, validate
from ..errors import UserError
from .common import (
    json_flag,
    limit_flags,
    limits_given,
    parallel,
    print_json,
    settings,
    store,
    verb_group,
)


def register(sub: Any) -> None:
    verbs = verb_group(sub, "queue", "list, limit, pause and resume queues")
    p = verbs.add_parser("ls", help="queues with their task counts")
    json_flag(p)
    p.set_defaults(handler=cmd_ls)
    p = verbs.add_parser("set", help="set a queue's parallel limit, status directory, finish"
                         " hooks, retention or its tasks' resource limits")
    p.add_argument("name")
    p.add_argument("--parallel", type=parallel, metavar="N|unlimited", default=argparse.SUPPRESS,
                   help="run at most N of its tasks at a time (1: one after another, in"
                        " submit order)")
    p.add_argument("--status-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="status files of its tasks in DIR/<queue>/<task id> ('' : back to"
                        " the server's status_dir)")
    p.add_argument("--on-finish-json", metavar="JSON", default=argparse.SUPPRESS,
                   help="a command run when each of its tasks ends, a JSON argv list"
                        " ('[]': none, not even the server's on_finish; '': the server's)")
    p.add_argument("--on-finish-url", metavar="URL", default=argparse.SUPPRESS,
                   help="POST each ended task's JSON there, signed (none: no webhook, not"
                        " even the server's on_finish_url; '': the server's)")
    p.add_argument("--output-head", metavar="SIZE", default=argparse.SUPPRESS,
                   help="bytes of each stream its tasks keep from the start (1M; '': the"
                        " server's output_head_mib)")
    p.add_argument("--output-tail", metavar="SIZE", default=argparse.SUPPRESS,
                   help="bytes its tasks keep from the end (0: the head only; '': the"
                        " server's output_tail_mib)")
    p.add_argument("--retain", metavar="AGE", default=argparse.SUPPRESS,
                   help="prune its tasks finished longer ago than AGE (30d; 0: never by age;"
                        " '': the server's retain)")
    p.add_argument("--retain-count", metavar="N", default=argparse.SUPPRESS,
                   help="keep only its newest N finished tasks (0: no count limit; '': the"
                        " server's retain_count)")
    p.add_argument("--rate", metavar="N/PERIOD", default=argparse.SUPPRESS,
                   help="start at most N of its tasks per sliding PERIOD, across all servers"
                        " (100/1m, 5/30s; none: no rate)")
    limit_flags(p, clearable=True)
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
    given, limits = vars(args), limits_given(args)
    bounds = {k: given[f"output_{k}"] for k in ("head", "tail") if f"output_{k}" in given}
    hooks = [k for k in ("on_finish_json", "on_finish_url") if k in given]
    kept = [k for k in ("retain", "retain_count") if k in given]
    if not ({"parallel", "status_dir", "rate"} & set(given) or hooks or kept or limits
            or bounds):
        raise UserError("queue set: give --parallel N|unlimited, --rate N/PERIOD,"
                        " --status-dir DIR,"
                        " --on-finish-json JSON, --on-finish-url URL, --retain AGE,"
                        " --retain-count N, --memory-limit, --cpu-limit, --files-limit,"
                        " --procs-limit, --output-head or --output-tail")
    db, said = store(args), []
    changes = ops.QueueChanges(db, args.name)  # every value checked before any is written
    if bounds:
        head, tail = changes.output(**bounds, max_tail=settings(args).max_tail_bytes)
        said.append(f"output head {_bound(head)}, tail {_bound(tail)}")
    if limits:
        now = changes.limits(limits)
        said.append(f"limits {now.describe() or 'none'}")
    if kept:
        changes.retention(retain=given.get("retain"), retain_count=given.get("retain_count"))
        said.append("retention set")
    if hooks:
        changes.hooks(on_finish=given.get("on_finish_json"), url=given.get("on_finish_url"))
        said.append("finish hooks set")
    if "status_dir" in given:
        changes.status_dir(args.status_dir or None)
        from ..statuspath import folder_name

        said.append(f"status files in {args.status_dir}/{folder_name(args.name)}"
                    if args.status_dir
                    else "status files in the server's status_dir")
    if "rate" in given:
        rate = changes.rate(args.rate)
        said.append(f"rate {rate.describe() if rate else 'none'}")
    if "parallel" in given:
        changes.parallel(args.parallel)
        said.append(f"parallel {'unlimited' if args.parallel is None else args.parallel}")
    changes.apply()
    return _done(args, f"queue {args.name}: {', '.join(said)}")


def cmd_pause(args: argparse.Namespace) -> int:
    ops.pause_queue(store(args), validate.check_name(args.name, "queue") or "")
    return _done(args, f"queue {args.name}: paused")


def cmd_resume(args: argparse.Namespace) -> int:
    ops.resume_queue(store(args), validate.check_name(args.name, "queue") or "")
    return _done(args, f"queue {args.name}: active")


def _bound(size: int | None) -> str:
    """A queue's output bound as ``queue set`` says it (None: the server's own)."""
    return "the server's" if size is None else f"{size} bytes"
