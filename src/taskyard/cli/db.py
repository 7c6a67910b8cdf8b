"""``taskyard db status|upgrade|compact`` and ``taskyard prune``: the store itself."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import InvalidInput
from .common import json_flag, print_json, settings, store, verb_group

FINISHED = ("succeeded", "failed", "stopped")


def register(sub: Any) -> None:
    verbs = verb_group(sub, "db", "the store: schema status, upgrade, compact")
    for verb, text in (("status", "where the store is and its schema version"),
                       ("upgrade", "apply the numbered migrations this taskyard ships (servers"
                                   " and clients also do it when they open the store)")):
        p = verbs.add_parser(verb, help=text)
        json_flag(p)
        p.set_defaults(handler=cmd_db)
    p = verbs.add_parser("compact", help="give the store's free space back to the file system"
                         " (SQLite; VACUUM on PostgreSQL)")
    json_flag(p)
    p.set_defaults(handler=cmd_compact)
    p = sub.add_parser("prune", help="remove finished tasks by age (or by the retention"
                       " settings), with their output and events")
    p.add_argument("--older-than", metavar="AGE",
                   help="tasks finished longer ago than this (30s, 2h, 7d); default: what"
                        " the retain and retain_count settings let go")
    p.add_argument("--status", action="append", default=[], choices=FINISHED,
                   help="only tasks that ended so (repeatable)")
    p.add_argument("--queue", metavar="Q", help="only this queue's tasks")
    p.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")
    json_flag(p)
    p.set_defaults(handler=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    import time

    from .. import retention, validate

    s = settings(args)
    if args.older_than is not None:
        default = retention.Rule(age=validate.parse_duration(args.older_than, "older-than"))
    else:
        default = retention.server_rule(s.retain, s.retain_count)
    if args.queue is not None:
        validate.required_name(args.queue, "queue")
    db = store(args)
    try:
        plan = retention.rules(db, default, args.queue)
        if args.older_than is not None:  # the age asked for, whatever the queues keep
            plan = dict.fromkeys(plan, default)
        if not any(rule.active for rule in plan.values()) and args.older_than is None:
            raise InvalidInput("nothing says what to prune: give --older-than AGE, or set"
                               " retain / retain_count (or queue set Q --retain)",
                               field="older-than")
        now = time.time()
        if args.dry_run:
            ids = sorted(i for q, rule in plan.items()
                         for i in retention.candidates(db, q, rule, now, args.status, None))
            found = [(i, t.queue, t.status.value) for i, t in ((i, db.get(i)) for i in ids)]
        else:
            pruner = retention.Pruner(db)
            pruner.run(plan, now, statuses=args.status)
            found = sorted((p.id, p.queue, p.status) for p in pruner.removed)
    finally:
        db.close()
    return _said(args, found)


def _said(args: argparse.Namespace, found: list[tuple[int, str, str]]) -> int:
    verb = "would remove" if args.dry_run else "removed"
    if args.json:
        print_json({"dry_run": args.dry_run, "count": len(found),
                    "tasks": [{"id": i, "queue": q, "status": st} for i, q, st in found]})
        return 0
    by: dict[tuple[str, str], int] = {}
    for _, queue, status in found:
        by[(queue, status)] = by.get((queue, status), 0) + 1
    detail = ", ".join(f"{n} {st} in {q}" for (q, st), n in sorted(by.items()))
    ids = _ranges([i for i, _, _ in found])
    sys.stdout.write(f"{verb} {len(found)} task(s)" + (f": {detail} (ids {ids})" if found
                                                      else "") + "\n")
    return 0


def _ranges(ids: list[int]) -> str:
    """``1-40, 42, 50-51``."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def cmd_compact(args: argparse.Namespace) -> int:
    s = settings(args)
    db = store(args)
    try:
        from ..server.pidfile import server_running

        full = server_running(s.pidfile) is None
        said = db.compact(full=full)
    finally:
        db.close()
    if args.json:
        print_json({"store": str(s.store_location) if not s.store else "postgresql",
                    "done": said})
    else:
        sys.stdout.write(said + "\n")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    s = settings(args)
    db = store(args)  # opening migrates, or refuses a newer schema with a clear message
    try:
        from ..store import postgres, sqlite

        shipped = (postgres.SCHEMA_VERSION if str(s.store_location).startswith("postgres")
                   else sqlite.SCHEMA_VERSION)
        info = {"store": db.location if hasattr(db, "location") else str(s.store_location),
                "schema_version": db.schema_version(), "taskyard_schema": shipped}
    finally:
        db.close()
    if args.json:
        print_json(info)
    else:
        sys.stdout.write(f"store {info['store']}: schema version {info['schema_version']}"
                         f" (this taskyard: {info['taskyard_schema']})\n")
    return 0
