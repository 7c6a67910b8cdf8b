"""``taskyard submit --from-file FILE``: many tasks, one JSON object a line (the HTTP
API's submit body), every line checked before any task is written."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import ops
from ..errors import InvalidInput, UserError
from ..model import TaskSpec
from .common import print_json, settings, store

#: submit's flags that --from-file goes with (the others say what one task is)
BULK_FLAGS = frozenset({"help", "from_file", "chunk", "json", "argv"})


def task_flags(parser: argparse.ArgumentParser) -> dict[str, tuple[str, Any]]:
    """submit's flags of one task: dest -> (the flag as written, its default)."""
    return {a.dest: (a.option_strings[0], a.default) for a in parser._actions
            if a.option_strings and a.dest not in BULK_FLAGS}


def submit_from_file(args: argparse.Namespace) -> int:
    argv = [a for a in args.argv if a != "--"]
    if argv:
        raise InvalidInput("--from-file takes its tasks from the file: give no command",
                           field="argv")
    given = [flag for dest, (flag, default) in args.task_flags.items()
             if getattr(args, dest, default) != default]
    if given:  # they would be ignored: every task's options are its line's
        raise InvalidInput(f"{given[0]} does not go with --from-file: each task's options"
                           " are the fields of its line", field=given[0][2:])
    if args.chunk < 1:
        raise InvalidInput("--chunk must be 1 or more", field="chunk")
    lines, specs = read_specs(args.from_file)
    cfg = settings(args)
    try:
        tasks = ops.submit_many(store(args), specs, max_tail=cfg.max_tail_bytes,
                                chunk=args.chunk, label=lambda i: f"line {lines[i]}")
    except UserError as exc:  # found by the store (a tenant, an after task): name the file
        raise type(exc)(f"{args.from_file}: {exc}", field=exc.field) from None
    if args.json:
        print_json([t.to_json() for t in tasks])
    else:
        sys.stdout.write("".join(f"{t.id}\n" for t in tasks))
    return 0


def read_specs(path: str) -> tuple[list[int], list[TaskSpec]]:
    """The specs of a JSON-lines file (``-``: standard input), and the line each came
    from; blank lines are skipped. A task without a cwd runs in the current directory,
    as ``taskyard submit`` does."""
    from ..specjson import from_json_text

    try:
        if path == "-":
            text = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                text = f.read()
    except OSError as exc:
        raise InvalidInput(f"--from-file: cannot read {path}: {exc.strerror}",
                           field="from-file") from None
    cwd = os.getcwd()
    lines: list[int] = []
    specs: list[TaskSpec] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            specs.append(from_json_text(line, cwd=cwd))
        except UserError as exc:
            raise type(exc)(f"{path}: line {number}: {exc}",
                            field=f"line {number}.{exc.field or 'spec'}") from None
        lines.append(number)
    if not specs:
        raise InvalidInput(f"--from-file: {path} holds no task", field="from-file")
    return lines, specs
