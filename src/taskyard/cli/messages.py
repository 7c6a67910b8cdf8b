"""``taskyard emit`` (inside a task: one message) and ``taskyard messages`` (read or
follow a task's messages, JSON lines)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .. import messages
from ..errors import StaleAttempt, TransitionError
from ..model import JSON
from ..validate import parse_json_value
from .common import (
    attempt_number,
    json_arg,
    json_flag,
    non_negative_int,
    print_json,
    store,
    task_id,
)

FOLLOW_PAUSE = 0.1  #: seconds between looks at a followed attempt with nothing new


def register(sub: Any) -> None:
    p = sub.add_parser("emit", help="inside a task: emit one message (a JSON value, at most"
                                    " 1 MiB); writing a line to $TASKYARD_MESSAGES_FD is"
                                    " faster")
    p.add_argument("value", metavar="JSON", help="the message: a JSON value, or @FILE")
    json_flag(p)
    p.set_defaults(handler=cmd_emit)

    p = sub.add_parser("messages", help="a task's messages, one JSON value a line")
    p.add_argument("id", type=task_id)
    p.add_argument("--attempt", type=attempt_number, metavar="N", help="of attempt N (default: the"
                   " latest)")
    p.add_argument("--since", type=non_negative_int, default=0, metavar="K",
                   help="start at message K (included; numbers start at 0 each attempt)")
    p.add_argument("--follow", "-f", action="store_true",
                   help="print messages as they come, until the attempt ends")
    json_flag(p)
    p.set_defaults(handler=cmd_messages)


def cmd_emit(args: argparse.Namespace) -> int:
    from .tasks import _running_task

    tid, epoch = _running_task("emit")
    value = parse_json_value(json_arg(args.value, "message"), "message", messages.MAX_BYTES)
    try:
        number = store(args).emit_messages(tid, epoch, [value], tail=_tail())
    except StaleAttempt as exc:  # as report and progress say it: exit 2, one line
        raise TransitionError(f"cannot emit: {exc}") from None
    if args.json:
        print_json({"id": tid, "attempt": epoch, "n": number})
    return 0


def _tail() -> int:
    """The server's messages_tail, which it puts in its tasks' environment."""
    import os

    text = os.environ.get("TASKYARD_MESSAGES_TAIL", "")
    return int(text) if text.isdigit() else messages.DEFAULT_TAIL


def cmd_messages(args: argparse.Namespace) -> int:
    s = store(args)
    if not args.follow:
        read = messages.read(s, args.id, args.since, None, args.attempt)
        if args.json:
            print_json(dict(read.as_json(), id=args.id))
        else:
            _print(read, args.since, as_records=False)
        return 0
    attempt, since = args.attempt, args.since
    while attempt is None:  # the attempt running now, or the next one while it waits
        task = s.get(args.id)
        if task.attempt:
            attempt = task.attempt
        elif task.terminal:
            return 0
        else:
            time.sleep(FOLLOW_PAUSE)
    while True:
        read = messages.read(s, args.id, since, messages.READ_LIMIT, attempt)
        _print(read, since, as_records=args.json)
        since = read.next
        if read.items:
            continue
        if read.finished and since >= read.total:
            return 0
        time.sleep(FOLLOW_PAUSE)


def _print(read: messages.MessagesRead, since: int, *, as_records: bool) -> None:
    """JSON lines: the values (or, ``as_records``, {"n", "value", "raw"}); a note on
    stderr where the bound dropped messages."""
    out = sys.stdout
    expected = since
    for item in read.items:
        if item.number > expected:
            sys.stderr.write(f"taskyard: messages {expected}-{item.number - 1} were dropped by"
                             " the messages bound\n")
        expected = item.number + 1
        shown: JSON = item.as_json() if as_records else item.value
        out.write(json.dumps(shown, separators=(",", ":"), ensure_ascii=False) + "\n")
    out.flush()
