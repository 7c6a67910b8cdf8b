"""``taskyard`` command line: the root parser, shared options and error handling.

Every user error prints one line on stderr and exits 2; nothing is changed.
Subcommands live in their own modules and are imported only when used, so a
``taskyard submit`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..errors import StoreError, TaskyardError, UserError

Handler = Callable[[argparse.Namespace], int]


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size finds it ($COLUMNS, then the
    terminal, else 80), without importing shutil (with bz2, lzma...: ~4 ms)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return 80


class Formatter(argparse.HelpFormatter):
    """argparse's formatter. argparse makes one for every add_argument (to check the
    metavar), and without a width it imports shutil to ask the terminal's."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         width if width is not None else _columns() - 2)


class Parser(argparse.ArgumentParser):
    """Parse errors as one line and exit 2, like every other user error."""

    #: on the root parser: the command being parsed, whose --help the hint names
    #: (argparse reports a stray option of a command from the root parser)
    command: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        where = f"{self.prog} {self.command}" if self.command else self.prog
        self.exit(2, f"{self.prog}: error: {message} (see {where} --help)\n")


def envvar(parser: argparse.ArgumentParser | Any, *flags: str, env: str, help: str,
           **kwargs: Any) -> None:
    """An option that also reads ``env``; ``--help`` shows the variable."""
    parser.add_argument(*flags, help=f"{help} [env {env}]", **kwargs)


#: Which module registers each command, in the order ``--help`` lists them.
MODULES = ("tasks", "listing", "controls", "functions", "queues", "cron", "tenants", "server",
           "web", "tokens", "db", "stats", "messages", "track")
VERBS = {
    **dict.fromkeys(("submit", "show", "logs", "wait", "progress", "report", "meta"), "tasks"),
    "ls": "listing",
    **dict.fromkeys(("kill", "pause", "resume", "restart", "send", "rm"), "controls"),
    **dict.fromkeys(("result", "signal", "config", "watch"), "functions"),
    "queue": "queues", "cron": "cron", "tenant": "tenants", "server": "server", "db": "db",
    "web": "web", "token": "tokens", "prune": "db", "stats": "stats",
    "emit": "messages", "messages": "messages", "track": "track",
}
_GLOBAL_WITH_VALUE = ("--home", "--store")
_GLOBAL_FLAGS = ("--utc",)


def verb_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (after the global options), if it is a known one."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _GLOBAL_WITH_VALUE:
            i += 2
        elif arg in _GLOBAL_FLAGS:
            i += 1
        elif arg.startswith(tuple(f"{flag}=" for flag in _GLOBAL_WITH_VALUE)):
            i += 1
        else:
            return arg if arg in VERBS else None
    return None


def build_parser(verb: str | None = None) -> Parser:
    """The parser; with ``verb``, only that command's module is loaded and registered
    (building all ~45 sub-parsers costs a ``taskyard submit`` more than its work)."""
    parser = Parser(prog="taskyard", description="Launch, supervise and control background tasks.")
    parser.command = verb
    envvar(parser, "--home", env="TASKYARD_HOME", metavar="DIR",
           help="home directory: store, pidfile, log, taskyard.toml"
                " (default $XDG_DATA_HOME/taskyard)")
    parser.add_argument("--store", metavar="PATH|URL",
                        help="the store: a SQLite file (default: taskyard.db in the home) or a"
                             " postgresql:// URL shared by several servers [env TASKYARD_STORE]")
    parser.add_argument("--utc", action="store_true",
                        help="print times in UTC, not local time (also after a command)")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    from importlib import import_module

    for name in (VERBS[verb],) if verb is not None else MODULES:
        import_module(f"{__package__}.{name}").register(sub)
    return parser


def parse(parser: Parser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; a command after ``--`` (``submit``, ``cron add``) is split off
    first, so options may follow positional arguments (``cron add NAME EXPR --tz Z --
    ARGV``) and nothing after ``--`` is ever read as an option of taskyard. Once the
    command has begun (``submit git checkout -- FILE``), that ``--`` is one of its
    arguments."""
    if "--" in argv:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        if hasattr(args, "argv"):
            begun = list(args.argv or [])
            args.argv = begun + list(argv[cut:] if begun else argv[cut + 1:])
            return args
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(verb_of(words))
    args = parse(parser, words)
    handler: Handler = args.handler
    try:
        _check_text(args)
        return handler(args)
    except UserError as exc:
        return fail(str(exc), exc.exit_code)
    except StoreError as exc:
        return fail(f"store error: {exc}", 1)
    except TaskyardError as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except OSError as exc:  # the machine refused: a read-only home, a full disk...
        where = f" ({exc.filename})" if exc.filename else ""
        return fail(f"{exc.strerror or exc}{where}", 1)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for debugging
        if os.environ.get("TASKYARD_DEBUG"):
            raise
        return fail(f"internal error: {type(exc).__name__}: {exc} (set TASKYARD_DEBUG=1 for"
                    " the traceback)", 1)


#: Arguments taken as bytes, which need not be UTF-8: file names, and ``send``'s data
#: for a task's stdin (``signal --data`` is JSON, checked as such). Every other one is
#: text that may be stored or looked up, and a store holds only valid Unicode.
_BYTES_ARGS = frozenset({"home", "store", "stdin_file", "data", "fd"})


def _check_text(args: argparse.Namespace) -> None:
    """Bytes in an argument that are not UTF-8 (lone surrogates here) are a user error."""
    from ..validate import check_unicode

    for key, value in vars(args).items():
        if key in _BYTES_ARGS:
            continue
        if isinstance(value, str):
            check_unicode(value, key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    check_unicode(item, f"{key}[{i}]")


def fail(message: str, code: int) -> int:
    sys.stderr.write(f"taskyard: error: {_one_line(message)}\n")
    return code


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
