"""track start | progress | finish | fail | stop: work taskyard did not start, reported
by the process that does it (a shell script, a program that calls the CLI).

The owner is ``--pid``, by default this command's parent: the shell or program that
runs ``taskyard track``, so that a script's later calls are recognised as its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import ops, tracked, validate
from ..lifecycle import Status
from .common import json_arg, json_flag, number, print_json, store, task_id

_PID_HELP = "the owner process (default: the parent of this command, the calling shell)"


def register(sub: Any) -> None:
    p = sub.add_parser("track", help="record work taskyard did not start, owned by the"
                                     " calling process (start, progress, finish, fail, stop)")
    verbs = p.add_subparsers(dest="track_verb", required=True, metavar="VERB",
                             parser_class=type(p))
    start = verbs.add_parser("start", help="a running tracked task; prints its id")
    start.add_argument("--name")
    start.add_argument("--meta", metavar="JSON", help="a JSON object (or @FILE)")
    start.add_argument("--queue", default="default")
    start.add_argument("--tenant", default="default")
    start.add_argument("--killable", action="store_true",
                       help="a kill signals the owner process (else the owner is asked to"
                            " stop and must read it)")
    start.set_defaults(handler=cmd_start)
    progress = verbs.add_parser("progress", help="report progress; prints 'stop' when a stop"
                                                 " was asked")
    progress.add_argument("id", type=task_id)
    progress.add_argument("done", type=number)
    progress.add_argument("total", type=number, nargs="?")
    progress.add_argument("message", nargs="?")
    progress.set_defaults(handler=cmd_progress)
    for verb, help_text in (("finish", "it succeeded"), ("fail", "it failed: MESSAGE says why"),
                            ("stop", "it stopped before its end (status stopped)")):
        q = verbs.add_parser(verb, help=help_text)
        q.add_argument("id", type=task_id)
        if verb == "fail":
            q.add_argument("message")
        q.set_defaults(handler=cmd_end, status={"finish": Status.SUCCEEDED, "fail":
                                                Status.FAILED, "stop": Status.STOPPED}[verb])
    for q in (start, progress, *[verbs.choices[v] for v in ("finish", "fail", "stop")]):
        q.add_argument("--pid", type=int, help=_PID_HELP)
        json_flag(q)


def _pid(args: argparse.Namespace) -> int:
    return os.getppid() if args.pid is None else args.pid


def cmd_start(args: argparse.Namespace) -> int:
    meta = None
    if args.meta is not None:
        meta = validate.parse_json_object(json_arg(args.meta, "meta"), "meta")
    task = tracked.track(store(args), name=args.name, meta=meta, queue=args.queue,
                         tenant=args.tenant, pid=_pid(args), killable=args.killable,
                         by=ops.actor())
    if args.json:
        print_json(task.to_json())
    else:
        sys.stdout.write(f"{task.id}\n")
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    s = store(args)
    owner = tracked.require_owner(s, args.id, _pid(args))
    ops.report_progress(s, args.id, owner.epoch, args.done, args.total, args.message)
    stop = tracked.stop_asked(s, owner)
    if args.json:
        print_json({"id": args.id, "should_stop": stop})
    elif stop:
        sys.stdout.write("stop\n")
    return 0


def cmd_end(args: argparse.Namespace) -> int:
    s = store(args)
    owner = tracked.require_owner(s, args.id, _pid(args))
    task = tracked.end(s, owner, args.status, getattr(args, "message", None), by=ops.actor())
    if args.json:
        print_json(task.to_json())
    else:
        sys.stdout.write(f"task {task.id}: {task.status}\n")
    return 0
