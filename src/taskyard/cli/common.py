"""Helpers shared by subcommands: settings, the store, output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ..config import Settings, load
from ..errors import InvalidInput
from ..store import MEMORY, open_store

if TYPE_CHECKING:
    from ..store.postgres import PostgresStore
    from ..store.sqlite import SQLiteStore


def settings(args: argparse.Namespace, **flags: Any) -> Settings:
    found = load(args.home, store=args.store, **flags)
    if found.store == MEMORY:  # gone when this command ends: nobody could read it
        raise InvalidInput("store :memory: is a store in one process's memory, for tests"
                           " (Yard.memory()): give a command a file path or a postgresql://"
                           " URL", field="store")
    return found


def store(args: argparse.Namespace, *, pool: bool = True) -> SQLiteStore | PostgresStore:
    """The store of the command (``pool=False``: one PostgreSQL connection, for a
    command that reads in one thread and ends)."""
    s = settings(args)
    return open_store(s.store_location, synchronous=s.synchronous, pool=pool)


def verb_group(sub: Any, name: str, help: str) -> Any:
    """A command with actions of its own (``taskyard NAME ACTION ...``)."""
    parent = sub.add_parser(name, help=help)
    actions = parent.add_subparsers(dest=f"{name}_verb", metavar="ACTION")
    actions.required = True
    return actions


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def task_id(text: str) -> int:
    """A task id argument: a positive integer (anything else is a clear error)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"invalid task id {text!r}: expected an integer from 1"
                                         " to 999999999999999999")
    return int(text)


def attempt_number(text: str) -> int:
    """An --attempt argument: attempts are numbered from 1."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be 1 or more (attempts are"
                                         f" numbered from 1), got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise argparse.ArgumentTypeError("expected an integer from 0 to 999999999999999999,"
                                         f" got {text!r}")
    return int(text)


def seconds(text: str, unit: str = "seconds", above_zero: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {unit}, got {text!r}") from None
    if not (value > 0 if above_zero else value >= 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected {unit} {'>' if above_zero else '>='} 0,"
                                         f" got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    return seconds(text, above_zero=True)


def mebibytes(text: str) -> float:
    return seconds(text, "MiB")


def parallel(text: str) -> int | None:
    """A parallel limit: N >= 1, or ``unlimited``."""
    if text in ("unlimited", "none"):
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or unlimited, got {text!r}")
    return int(text)


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    return value


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def utc_flag(parser: argparse.ArgumentParser) -> None:
    """``--utc`` on a command that prints times; also a global option (before the verb),
    which this one does not override when it is not given."""
    parser.add_argument("--utc", action="store_true", default=argparse.SUPPRESS,
                        help="print times in UTC, not local time (--json: always ISO 8601 UTC)")


def utc(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "utc", False))


def read_file_bytes(path: str, what: str, limit: int | None = None) -> bytes:
    """A file's bytes, at most ``limit`` (default: what a task may be given on stdin or
    its descriptors): a longer file, or a device with no end (/dev/zero), is an error
    after that many bytes, never read whole into memory."""
    from ..validate import MAX_STDIN_BYTES

    most = MAX_STDIN_BYTES if limit is None else limit
    try:
        with open(path, "rb") as handle:
            data = handle.read(most + 1)
    except OSError as exc:
        raise InvalidInput(f"{what} {path}: {exc.strerror}", field=what) from None
    if len(data) > most:
        raise InvalidInput(f"{what} {path}: over {most} bytes", field=what)
    return data


def json_arg(text: str, what: str) -> str | bytes:
    """A JSON argument, or ``@FILE`` to read it from a file (for large values)."""
    if text.startswith("@"):
        return read_file_bytes(text[1:], what)
    return text


_LIMIT_HELP = (
    ("memory", "SIZE", "address space of each of its processes: 512M, 1.5G, 100K or bytes"
                       " (an allocation past it fails)"),
    ("cpu", "DURATION", "CPU time: 60s, 2m, 1h (whole seconds): SIGXCPU, then SIGKILL 2 s later"),
    ("files", "N", "open files of each of its processes (RLIMIT_NOFILE)"),
    ("procs", "N", "processes of its user (RLIMIT_NPROC; not enforced for root)"),
)


def limit_flags(p: argparse.ArgumentParser, clearable: bool = False) -> None:
    """``--memory-limit``, ``--cpu-limit``, ``--files-limit``, ``--procs-limit``; a task
    stopped by one ends failed, reason limit."""
    for kind, metavar, text in _LIMIT_HELP:
        p.add_argument(f"--{kind}-limit", metavar=metavar, default=argparse.SUPPRESS,
                       help=text + (" ('none': no limit)" if clearable else ""))


def limits_given(args: argparse.Namespace) -> dict[str, object]:
    """The limit flags given, by kind (as typed: checked by ``limits.parse``)."""
    given = vars(args)
    return {kind: given[f"{kind}_limit"] for kind, _, _ in _LIMIT_HELP
            if f"{kind}_limit" in given}
