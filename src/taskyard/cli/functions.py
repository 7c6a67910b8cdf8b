"""result, signal, config, watch: what operators do with function tasks (and watch
works for any task)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .. import ops, validate
from ..errors import InvalidInput
from ..lifecycle import Status
from .common import json_arg, json_flag, print_json, seconds, store, task_id


def register(sub: Any) -> None:
    p = sub.add_parser("result", help="a function task's return value (JSON)")
    p.add_argument("id", type=task_id)
    json_flag(p)  # its output is JSON either way
    p.set_defaults(handler=cmd_result)

    p = sub.add_parser("signal", help="send a custom signal a function task reads with"
                                      " ctx.signals()")
    p.add_argument("id", type=task_id)
    p.add_argument("name")
    p.add_argument("--data", metavar="JSON", help="a JSON value to go with it (or @FILE)")
    json_flag(p)
    p.set_defaults(handler=cmd_signal)

    p = sub.add_parser("config", help="a task's live config: get it, or set KEY=JSON pairs")
    p.add_argument("id", type=task_id)
    p.add_argument("action", choices=("get", "set"))
    p.add_argument("pairs", nargs="*", metavar="KEY=JSON",
                   help="with set: values to merge in (JSON null deletes the key)")
    json_flag(p)  # its output is JSON either way
    p.set_defaults(handler=cmd_config)

    p = sub.add_parser("watch", help="a live progress bar until the task ends (exit codes as"
                                     " wait)")
    p.add_argument("id", type=task_id)
    p.add_argument("--timeout", type=seconds, metavar="S")
    json_flag(p)
    p.set_defaults(handler=cmd_watch)


def cmd_result(args: argparse.Namespace) -> int:
    value = ops.result(store(args), args.id)
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    return 0


def cmd_signal(args: argparse.Namespace) -> int:
    data = None
    if args.data is not None:
        data = validate.parse_json_value(json_arg(args.data, "data"), "data")
    sent = ops.send_signal(store(args), args.id, args.name, data)
    if args.json:
        print_json(sent)
    else:
        sys.stdout.write(f"task {args.id}: signal {args.name} sent (#{sent['id']})\n")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    s = store(args)
    if args.action == "get":
        if args.pairs:
            raise InvalidInput("config get takes no KEY=JSON pairs", field="pairs")
        print_json(s.get_config(args.id)[1])
        return 0
    if not args.pairs:
        raise InvalidInput("config set needs at least one KEY=JSON", field="pairs")
    patch: dict[str, Any] = {}
    for pair in args.pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"config set {pair!r}: expected KEY=JSON", field="pairs")
        patch[key] = validate.parse_json_value(raw, "config")
    task = ops.set_config(s, args.id, patch)
    print_json(task.config)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    if args.json:  # no bar: the task once it ended, as wait --json
        from .tasks import cmd_wait

        return cmd_wait(args)
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    s = store(args)
    task = s.get(args.id)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with Progress(TextColumn("[bold]task {task.fields[id]}[/] {task.fields[status]}"),
                  BarColumn(), TaskProgressColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), transient=False) as bar:
        row = bar.add_task("", total=None, id=task.id, status=task.status.value)
        while True:
            p = task.progress
            bar.update(row, completed=p.done or 0, total=p.total,
                       description=(p.message or "")[:60], status=task.status.value)
            if task.terminal:
                break
            if deadline is not None and time.monotonic() >= deadline:
                sys.stderr.write(f"taskyard: task {args.id} did not end within"
                                 f" {args.timeout:g}s\n")
                return 124
            time.sleep(0.2)
            task = s.get(args.id)
    if task.error:
        sys.stderr.write(f"task {task.id}: {task.status} ({task.reason}): {task.error}\n")
    return 0 if task.status is Status.SUCCEEDED else 1
