"""submit, show, logs, wait, progress, meta (``ls``: listing.py)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from .. import limits, ops, rates, retry, validate
from ..errors import InvalidInput, UserError
from ..lifecycle import Status
from ..model import Task, TaskSpec, hook_json
from ..outputbounds import parse_optional
from ..statuspath import shown_path
from ..store.base import ClientStore as Store
from .bulk import task_flags
from .common import (
    attempt_number,
    json_arg,
    json_flag,
    limit_flags,
    limits_given,
    non_negative_int,
    number,
    positive_seconds,
    print_json,
    read_file_bytes,
    seconds,
    settings,
    store,
    task_id,
    utc,
    utc_flag,
)


def register(sub: Any) -> None:
    p = sub.add_parser("submit", help="submit a command as a task",
                       description="Submit ARGV (after --) as a task. No shell is involved.")
    task_options(p)
    stdin = p.add_mutually_exclusive_group()
    stdin.add_argument("--stdin-file", metavar="F", help="feed the task this file on stdin")
    stdin.add_argument("--stdin-open", action="store_true",
                       help="keep stdin open for `taskyard send`")
    p.add_argument("--fd", action="append", metavar="N=@FILE|N=TEXT",
                   help="give the task this data to read on file descriptor N (3-255;"
                        " repeatable), as LongTask programs read their parameters on fd 3")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", metavar="TIME",
                      help="do not start before TIME (ISO 8601; no zone means local time)")
    when.add_argument("--in", dest="in_", metavar="DURATION",
                      help="do not start before DURATION from now (30s, 10m, 2h, 1d)")
    p.add_argument("--after", metavar="ID[,ID...]",
                   help="start only once these tasks succeeded; if one fails or is stopped,"
                        " this one fails (reason dependency)")
    p.add_argument("--from-file", metavar="FILE",
                   help="submit the tasks of FILE instead ('-': stdin): one JSON object a line,"
                        " with the HTTP API's submit fields; all checked before any is written")
    p.add_argument("--chunk", type=non_negative_int, default=ops.CHUNK, metavar="N",
                   help=f"with --from-file: tasks written per transaction (default {ops.CHUNK})")
    json_flag(p)
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- PROGRAM ARG...")
    p.set_defaults(handler=cmd_submit, task_flags=task_flags(p))

    p = sub.add_parser("show", help="show one task with its attempts and events")
    p.add_argument("id", type=task_id)
    utc_flag(p)
    json_flag(p)
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("logs", help="write a task's output (raw bytes)")
    p.add_argument("id", type=task_id)
    p.add_argument("--stream", choices=("stdout", "stderr"), default="stdout")
    p.add_argument("--offset", type=non_negative_int, default=0, help="first byte to write")
    p.add_argument("--limit", type=non_negative_int, help="write at most N bytes")
    p.add_argument("--attempt", type=attempt_number, help="attempt to read (default: latest)")
    p.add_argument("--follow", "-f", action="store_true", help="stream until the task ends")
    p.add_argument("--json", action="store_true",
                   help="one JSON object instead of the raw bytes: the bytes in base64"
                        " (data_base64) and as text (data, invalid UTF-8 replaced), offsets,"
                        " total and any dropped range; not with --follow")
    p.set_defaults(handler=cmd_logs)

    p = sub.add_parser("wait", help="wait until a task ends (exit 0 succeeded, 1 failed or"
                                    " stopped, 124 timeout)")
    p.add_argument("id", type=task_id)
    p.add_argument("--timeout", type=seconds, metavar="S")
    json_flag(p)
    p.set_defaults(handler=cmd_wait)

    p = sub.add_parser("progress", help="report progress from inside a task")
    p.add_argument("done", type=number)
    p.add_argument("total", type=number, nargs="?")
    p.add_argument("message", nargs="?")
    json_flag(p)
    p.set_defaults(handler=cmd_progress)

    p = sub.add_parser("report", help="inside a task: report its own outcome (an error"
                                      " then an exit 0 ends it failed, reason reported)")
    p.add_argument("verdict", choices=("ok", "error"))
    p.add_argument("message", nargs="?", help="what went wrong (with error)")
    json_flag(p)
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("meta", help="merge-patch a task's metadata (RFC 7396)")
    p.add_argument("id", type=task_id)
    p.add_argument("patch", metavar="JSON", help="a JSON object (or @FILE)")
    json_flag(p)
    p.set_defaults(handler=cmd_meta)


def task_options(p: argparse.ArgumentParser) -> None:
    """What a task is and how it runs: shared by ``submit`` and ``cron add``."""
    p.add_argument("--function", metavar="NAME",
                   help="call this registered Python function instead of a command")
    p.add_argument("--kwargs", metavar="JSON",
                   help="with --function: its keyword arguments, a JSON object (or @FILE)")
    p.add_argument("--name", help="a name to show")
    p.add_argument("--queue", default="default", help="queue (default: default)")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="extra environment variable for the task (repeatable)")
    p.add_argument("--cwd", metavar="DIR", help="working directory (default: the current one)")
    p.add_argument("--meta", metavar="JSON", help="metadata: a JSON object (or @FILE)")
    p.add_argument("--priority", type=int, default=0, metavar="P",
                   help="higher runs first within its queue (default 0); equal ones run FIFO")
    p.add_argument("--unique", metavar="KEY",
                   help="if a task with KEY is scheduled, queued, running or paused, print"
                        " that one instead of submitting a new one")
    p.add_argument("--mutex", metavar="KEY",
                   help="run at most one task with KEY at a time (the others wait queued)")
    p.add_argument("--rate-limit", metavar="KEY=N/PERIOD",
                   help="start at most N tasks with KEY per sliding PERIOD, across all"
                        " servers (api=10/1m, 5/30s, 1000/1h); the others wait queued")
    p.add_argument("--tenant", default="default", metavar="T",
                   help="the tenant it belongs to (default: default); it runs only while"
                        " its tenant is enabled")
    p.add_argument("--retries", type=int, default=0, metavar="N",
                   help="retry a failed attempt up to N times (default 0)")
    p.add_argument("--backoff", choices=("fixed", "exponential"), default="exponential",
                   help="retry delay: fixed, or doubling per retry (default); ±20%% jitter")
    p.add_argument("--retry-delay", type=seconds, default=1.0, metavar="S",
                   help="seconds before the first retry (default 1)")
    p.add_argument("--retry-on", default="exit,signal,timeout,exception", metavar="REASONS",
                   help="failures to retry: exit,signal,timeout,exception,crashed,spawn,limit"
                        " (default exit,signal,timeout,exception; crashed makes it"
                        " at-least-once)")
    p.add_argument("--timeout", type=positive_seconds, metavar="S",
                   help="kill it after S seconds of running (TERM, then KILL after the grace);"
                        " it ends failed with reason timeout")
    p.add_argument("--keep", action="store_true",
                   help="never prune it (retention and taskyard prune pass it by)")
    p.add_argument("--on-finish-json", metavar="JSON",
                   help="a command run when it ends, as a JSON argv list (instead of the"
                        " queue's or the server's on_finish; '[]': no hook command at all)")
    limit_flags(p)
    p.add_argument("--output-head", metavar="SIZE", help="bytes of each stream kept from its"
                   " start (1M, 512K...; default: the queue's, else the server's 1 MiB)")
    p.add_argument("--output-tail", metavar="SIZE", help="bytes kept from its end (default:"
                   " the queue's, else the server's 32 MiB; 0: the head only)")


def spec_from(args: argparse.Namespace) -> TaskSpec:
    """The TaskSpec of parsed ``task_options`` (and submit's own options, if present)."""
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    kwargs = None
    if args.function is not None:
        if argv:
            raise InvalidInput("give --function or a command after --, not both", field="argv")
        kwargs = (validate.parse_json_object(json_arg(args.kwargs, "kwargs"), "kwargs")
                  if args.kwargs is not None else {})
    elif args.kwargs is not None:
        raise InvalidInput("--kwargs goes with --function", field="kwargs")
    elif not argv:
        raise InvalidInput(f"a command is required: taskyard {args.verb} ... -- PROGRAM ARG...",
                           field="argv")
    meta = (validate.parse_json_object(json_arg(args.meta, "meta"))
            if args.meta is not None else {})
    stdin_file = getattr(args, "stdin_file", None)
    stdin = read_file_bytes(stdin_file, "stdin-file") if stdin_file else None
    fds: dict[int, bytes] = {}
    for given in getattr(args, "fd", None) or []:
        number, rest = validate.parse_fd(given)
        if number in fds:
            raise InvalidInput(f"--fd {number} is given twice", field="fds")
        fds[number] = read_file_bytes(rest[1:], "fd") if rest.startswith("@") else os.fsencode(rest)
    cwd = os.path.abspath(args.cwd) if args.cwd else os.getcwd()
    run_at = None
    if getattr(args, "at", None) is not None:
        run_at = validate.parse_time(args.at)
    elif getattr(args, "in_", None) is not None:
        run_at = time.time() + validate.parse_duration(args.in_)
    return TaskSpec(argv=tuple(argv), name=args.name, queue=args.queue,
                    env=validate.parse_env_pairs(args.env), cwd=cwd, meta=meta,
                    stdin=stdin, stdin_open=getattr(args, "stdin_open", False), timeout=args.timeout,
                    priority=args.priority, run_at=run_at, retries=args.retries,
                    retry_delay=args.retry_delay, backoff=args.backoff,
                    retry_on=tuple(r.value for r in retry.parse_on(args.retry_on)),
                    after=_after(args), unique=args.unique,
                    mutex=args.mutex, tenant=args.tenant, function=args.function,
                    kwargs=kwargs, fds=fds,
                    on_finish=(validate.parse_hook(args.on_finish_json)
                               if args.on_finish_json is not None else None),
                    keep=args.keep, limits=limits.parse(limits_given(args)),
                    rate_limit=(rates.parse_rate_limit(args.rate_limit, "rate-limit")
                                if args.rate_limit is not None else None),
                    output_head=parse_optional(args.output_head, "output-head"),
                    output_tail=parse_optional(args.output_tail, "output-tail"))


def cmd_submit(args: argparse.Namespace) -> int:
    if args.from_file is not None:
        from .bulk import submit_from_file

        return submit_from_file(args)
    spec = spec_from(args)
    task = ops.submit(store(args), spec, max_tail=settings(args).max_tail_bytes)
    if args.json:
        print_json(task.to_json())
    else:
        sys.stdout.write(f"{task.id}\n")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    s = store(args)
    task = s.get(args.id)
    attempts, events, hooks = s.attempts(args.id), s.events(args.id), s.hooks_of(args.id)
    held = _held_back(s, task)
    if args.json:
        data = task.to_json()
        data["attempts"] = [a.to_json() for a in attempts]
        data["events"] = [e.to_json() for e in events]
        data["status_file"] = shown_path(task, attempts, s.queue_status_dirs(),
                                         settings(args).status_dir)
        data["hooks"] = [hook_json(h) for h in hooks]
        data["held_back"] = [r.to_json() for r in held]
        print_json(data)
    else:
        from .render import task_detail

        task_detail(task, attempts, events, utc(args), hooks, [r.text for r in held])
    return 0


def _held_back(db: Store, task: Task) -> list[Any]:
    """The rate limits that keep a queued task from starting now (why.Reason)."""
    if task.status is not Status.QUEUED or (task.rate_limit is None
                                            and not db.queue_rate(task.queue)):
        return []
    from ..why import rate_reasons

    return list(rate_reasons(db.waiting(task.id), time.time()))


def cmd_logs(args: argparse.Namespace) -> int:
    s = store(args)
    if args.json:
        if args.follow:
            raise InvalidInput("logs --json reads what is there; --follow streams raw bytes",
                               field="follow")
        import base64

        read = ops.read_output(s, args.id, args.stream, args.offset, args.limit, args.attempt)
        print_json({"id": args.id, "stream": read.stream, "offset": read.offset,
                    "next_offset": read.next_offset, "total": read.total,
                    "dropped": list(read.dropped) if read.dropped else None,
                    "finished": read.finished,
                    "data": read.data.decode("utf-8", "replace"),
                    "data_base64": base64.b64encode(read.data).decode("ascii")})
        return 0
    out = sys.stdout.buffer
    offset, remaining, attempt = args.offset, args.limit, args.attempt
    while True:
        if attempt is None and args.follow:
            # Follow one attempt: the one running now (or the next, while it waits).
            current = s.get(args.id).attempt
            attempt = current or None
        read = ops.read_output(s, args.id, args.stream, offset, remaining, attempt)
        if read.dropped:
            sys.stderr.write(f"taskyard: bytes {read.dropped[0]}-{read.dropped[1]} of"
                             f" {args.stream} were dropped by the output bound\n")
        if read.data:
            out.write(read.data)
            out.flush()
        if remaining is not None:
            remaining -= read.next_offset - offset
        offset = read.next_offset
        if remaining == 0 or (offset >= read.total and not args.follow):
            return 0
        if offset >= read.total:
            if read.finished and not s.get(args.id).status.waiting:
                return 0
            time.sleep(0.1)


def cmd_wait(args: argparse.Namespace) -> int:
    s = store(args)
    task = ops.wait(s, args.id, args.timeout)
    if task is None:
        sys.stderr.write(f"taskyard: task {args.id} did not end within {args.timeout:g}s\n")
        if args.json:
            print_json(dict(s.get(args.id).to_json(), timed_out=True))
        return 124
    if args.json:
        print_json(task.to_json())
    return 0 if task.status is Status.SUCCEEDED else 1


def _running_task(verb: str) -> tuple[int, int]:
    """The task and attempt this process runs in (set by the server in its environment)."""
    tid, epoch = os.environ.get("TASKYARD_TASK_ID"), os.environ.get("TASKYARD_ATTEMPT")
    if (not tid or not epoch or not tid.isdigit() or not epoch.isdigit()
            or len(tid) > 18 or len(epoch) > 18):
        raise UserError(f"taskyard {verb} runs inside a task (TASKYARD_TASK_ID and"
                        " TASKYARD_ATTEMPT, set by the server, are missing or not numbers)")
    return int(tid), int(epoch)


def cmd_report(args: argparse.Namespace) -> int:
    tid, epoch = _running_task("report")
    if args.verdict == "ok" and args.message is not None:
        raise InvalidInput("report ok takes no message", field="message")
    from .inside import check_inside

    db = store(args)
    check_inside(db, tid, epoch, "report")
    ops.report(db, tid, epoch, args.verdict == "ok", args.message)
    if args.json:
        print_json({"id": tid, "attempt": epoch, "report": args.verdict,
                    "message": args.message})
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    tid, epoch = _running_task("progress")
    ops.report_progress(store(args), tid, epoch, args.done, args.total, args.message)
    if args.json:
        print_json({"id": tid, "attempt": epoch, "done": args.done,
                    "total": args.total, "message": args.message})
    return 0


def cmd_meta(args: argparse.Namespace) -> int:
    patch = validate.parse_json_object(json_arg(args.patch, "meta"))
    task = ops.set_meta(store(args), args.id, patch)
    if args.json:
        print_json(task.to_json())
    else:
        print_json(task.meta)
    return 0


def _after(args: argparse.Namespace) -> tuple[int, ...]:
    given: str | None = getattr(args, "after", None)  # cron add has no --after
    return () if given is None else validate.parse_ids(given, "after")
