"""``taskyard db status|upgrade``: the store's schema version."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import json_flag, print_json, settings, store, verb_group


def register(sub: Any) -> None:
    verbs = verb_group(sub, "db", "the store's schema: status and upgrade")
    for verb, text in (("status", "where the store is and its schema version"),
                       ("upgrade", "apply the numbered migrations this taskyard ships (servers"
                                   " and clients also do it when they open the store)")):
        p = verbs.add_parser(verb, help=text)
        json_flag(p)
        p.set_defaults(handler=cmd_db)


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
