"""kill, pause, resume, send, restart, rm."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import ops
from ..errors import InvalidInput
from ..model import Task
from .common import json_flag, print_json, seconds, store, task_id


def register(sub: Any) -> None:
    p = sub.add_parser("kill", help="signal a task's process group (default TERM, then KILL"
                                    " after the grace period); a waiting task is stopped")
    p.add_argument("id", type=task_id)
    p.add_argument("--signal", "-s", metavar="SIG",
                   help="signal name or number (default TERM)")
    p.add_argument("--graceful", action="store_true",
                   help="ask a function task to stop by itself (ctx.should_stop() turns true);"
                        " no signal is sent")
    _common(p, cmd_kill)

    for verb, text in (("pause", "stop a running task's process group (SIGSTOP)"),
                       ("resume", "continue a paused task (SIGCONT)"),
                       ("restart", "run a finished task again as a new attempt")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("id", type=task_id)
        _common(p, {"pause": cmd_pause, "resume": cmd_resume, "restart": cmd_restart}[verb],
                applied_by_server=verb != "restart")

    p = sub.add_parser("send", help="write to the stdin of a task submitted with --stdin-open")
    p.add_argument("id", type=task_id)
    p.add_argument("data", nargs="?", help="text to send, or - to read it from stdin")
    p.add_argument("--eof", action="store_true", help="then close the task's stdin")
    _common(p, cmd_send)

    p = sub.add_parser("rm", help="delete a finished task and its output")
    p.add_argument("id", type=task_id)
    p.add_argument("--force", action="store_true", help="kill it first if it is not finished")
    p.add_argument("--timeout", type=seconds, default=30.0, metavar="S",
                   help="with --force: how long to wait for it to end (default 30)")
    json_flag(p)
    p.set_defaults(handler=cmd_rm)


def _common(p: argparse.ArgumentParser, handler: Any, applied_by_server: bool = True) -> None:
    if applied_by_server:
        p.add_argument("--timeout", type=seconds, default=ops.REQUEST_TIMEOUT, metavar="S",
                       help="how long to wait for the server to apply it (default"
                            f" {ops.REQUEST_TIMEOUT:g}; past it the request stays recorded"
                            " and the exit code is 1)")
    json_flag(p)
    p.set_defaults(handler=handler)


def _print(args: argparse.Namespace, task: Task, text: str) -> int:
    if args.json:
        print_json(task.to_json())
    else:
        sys.stdout.write(text + "\n")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    if args.graceful:
        if args.signal is not None:
            raise InvalidInput("--graceful sends no signal: give --graceful or --signal",
                               field="signal")
        task = ops.ask_stop(store(args), args.id)
        return _print(args, task, f"task {task.id}: asked to stop")
    task = ops.kill(store(args), args.id, args.signal or "TERM", timeout=args.timeout)
    if task.terminal:
        said = f"task {task.id}: {task.status}"
    elif task.tracked and not _killable(args, task.id):
        said = f"task {task.id}: its owner read the stop request (no signal sent)"
    else:
        said = f"task {task.id}: signal sent"
    return _print(args, task, said)


def _killable(args: argparse.Namespace, task_id: int) -> bool:
    """A tracked task's owner takes signals (tracked with killable=True)."""
    owner = store(args).tracked_owner(task_id)
    return owner is not None and owner.killable


def cmd_pause(args: argparse.Namespace) -> int:
    task = ops.pause(store(args), args.id, timeout=args.timeout)
    return _print(args, task, f"task {task.id}: {task.status}")


def cmd_resume(args: argparse.Namespace) -> int:
    task = ops.resume(store(args), args.id, timeout=args.timeout)
    return _print(args, task, f"task {task.id}: {task.status}")


def cmd_restart(args: argparse.Namespace) -> int:
    task = ops.restart(store(args), args.id)
    return _print(args, task, f"task {task.id}: {task.status} (attempt {task.attempt + 1})")


def cmd_send(args: argparse.Namespace) -> int:
    if args.data is None and not args.eof:
        from ..errors import InvalidInput

        raise InvalidInput("give DATA, - (read stdin) or --eof", field="data")
    if args.data == "-":
        data = sys.stdin.buffer.read()
    else:
        data = (args.data or "").encode("utf-8", "surrogateescape")
    ops.send(store(args), args.id, data, eof=args.eof, timeout=args.timeout)
    if args.json:
        print_json({"id": args.id, "sent_bytes": len(data), "eof": args.eof})
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    ops.remove(store(args), args.id, force=args.force, timeout=args.timeout)
    if args.json:
        print_json({"id": args.id, "deleted": True})
    return 0
