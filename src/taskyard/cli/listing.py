"""``taskyard ls``: tasks newest first, filtered (the filter of ``Yard.list`` and the
HTTP API: ``taskyard/search.py``), a page at a time, or their counts per status."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .. import search
from ..lifecycle import Status
from ..model import Task
from ..store.base import ClientStore as Store
from ..store.browse import COUNT_CAP
from ..store.filters import KINDS, MIN_TEXT, TaskFilter
from .common import json_flag, non_negative_int, print_json, settings, store, utc, utc_flag

if TYPE_CHECKING:
    from ..store.sqlserver import SqlServerStore

#: tasks a page shows on a terminal when no --limit is given
TERMINAL_PAGE = 50


def register(sub: Any) -> None:
    p = sub.add_parser("ls", help="list tasks, newest first",
                       description="List tasks, newest first, filtered; a page at a time.")
    p.add_argument("--status", action="append", choices=[s.value for s in Status],
                   help="only tasks in this status (repeatable: any of them)")
    p.add_argument("--queue", help="only tasks of this queue")
    p.add_argument("--tenant", help="only tasks of this tenant")
    p.add_argument("--name", metavar="GLOB",
                   help="only tasks with this name (* and ? match any text and one character)")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE",
                   help="only tasks whose metadata has VALUE (JSON, or else a string) at KEY"
                        " (a.b for nested keys; repeatable: all of them)")
    p.add_argument("--kind", choices=KINDS, help="only command, function or tracked tasks")
    p.add_argument("--since", metavar="TIME",
                   help="submitted at or after TIME (ISO 8601, or a duration ago: 1h, 2d)")
    p.add_argument("--until", metavar="TIME", help="submitted before TIME (as --since)")
    p.add_argument("--text", metavar="WORD",
                   help="only tasks with WORD in their name, command or function"
                        f" (case-insensitive; {MIN_TEXT} characters or more)")
    p.add_argument("--limit", type=non_negative_int, metavar="N",
                   help=f"at most N tasks (default {TERMINAL_PAGE} on a terminal, else all;"
                        " 0: all)")
    p.add_argument("--cursor", help="the page after the one that printed this next_cursor")
    p.add_argument("--counts", action="store_true",
                   help="tasks per status matching the other filters, not the tasks")
    utc_flag(p)
    json_flag(p)
    p.set_defaults(handler=cmd_ls)


def filter_of(args: argparse.Namespace) -> TaskFilter:
    return search.make_filter(
        status=args.status or [], queue=args.queue, tenant=args.tenant, name=args.name,
        meta=search.meta_pairs(args.meta), text=args.text, kind=args.kind,
        since=args.since, until=args.until)


def cmd_ls(args: argparse.Namespace) -> int:
    f = filter_of(args)
    before = search.decode_cursor(args.cursor)
    db = store(args, pool=False)
    if args.counts:
        return _counts(args, db, f)
    limit = args.limit
    if limit is None:
        limit = TERMINAL_PAGE if sys.stdout.isatty() else 0
    page = db.browse(f, before=before, limit=limit or None)
    cursor = search.encode_cursor(page.next_before)
    if args.json:
        print_json({"items": [t.to_json() for t in page.items], "next_cursor": cursor,
                    "partial": page.partial})
        return 0
    from .render import task_table

    task_table(page.items, utc(args))
    if cursor is not None:
        sys.stderr.write(f"taskyard: more tasks: the next page with --cursor {cursor}\n")
    _warn_if_orphaned(args, db, page.items)
    return 0


def _counts(args: argparse.Namespace, db: SqlServerStore, f: TaskFilter) -> int:
    found, partial = db.count_tasks(f)
    if f.status:
        found = {s.value: found[s.value] for s in f.status}
    if args.json:
        print_json({"counts": found, "total": sum(found.values()), "partial": partial})
        return 0
    width = max(len(s) for s in found)
    for status, n in found.items():
        sys.stdout.write(f"{status:<{width}}  {n:>9,}\n")
    sys.stdout.write(f"{'total':<{width}}  {sum(found.values()):>9,}\n")
    if partial:
        sys.stderr.write(f"taskyard: note: more tasks match: these are the counts of the"
                         f" newest {COUNT_CAP:,} (a filter counted task by task stops"
                         " there)\n")
    return 0


def _warn_if_orphaned(args: argparse.Namespace, db: Store, tasks: list[Task]) -> None:
    """Running tasks whose server is gone (judged by the store: a server on another home
    or machine may run them): say which server, and what will happen to them."""
    shown = {t.id for t in tasks if t.status.active}
    if not shown:
        return
    from ..liveness import any_alive, silent_owners

    lease = settings(args).lease
    silent = silent_owners(db, lease, shown)
    if not silent:
        return
    later = "" if any_alive(db, lease) else " when a server starts"
    for gone in silent:
        owner = gone.owner
        if gone.heard is None:
            who = f"server {owner.id} (no longer known to the store)"
        else:
            who = f"server {owner.id} on host {owner.host} last heard {gone.heard:.0f} s ago"
        why = f" (its process {owner.pid} is gone)" if gone.pid_gone else ""
        sys.stderr.write(f"taskyard: note: {who}: its {len(gone.tasks)} running task(s) will"
                         f" be recorded as crashed{later}{why}\n")
