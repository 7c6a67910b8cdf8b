"""Retention: by age and by count, per queue; what is kept (--keep, tasks others wait
for, unfinished ones); pruning by hand; the server pruning by itself; a store that
stops growing under a steady load, and db compact giving the space back."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from taskyard import Yard
from taskyard.lifecycle import Status
from taskyard.model import TaskSpec
from taskyard.retention import Pruner, Rule, rules
from taskyard.store.base import Outcome, OutputWrite
from taskyard.store.sqlite import SQLiteStore
from taskyard.testing import cli, server_process, stop_server, wait_for


def _prune(home: Path, *args: str) -> dict[str, object]:
    done = cli(home, "prune", "--json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _ids(result: dict[str, object]) -> list[int]:
    tasks = result["tasks"]
    assert isinstance(tasks, list)
    return [t["id"] for t in tasks]


def test_prune_by_hand_keeps_what_must_stay(home: Path) -> None:
    with Yard(home) as y:
        proc = server_process(home)
        try:
            done = [y.submit(["true"]) for _ in range(4)]
            kept = y.submit(["true"], keep=True)
            failed = y.submit(["sh", "-c", "exit 1"], queue="other")
            waited = y.submit(["true"])
            for t in (*done, kept, failed, waited):
                wait_for(lambda i=t.id: y.get(i).terminal, timeout=30, message="ended")
            later = y.submit(["true"], after=[waited.id], delay=3600)  # waits for `waited`
            running = y.submit(["sleep", "60"])
            wait_for(lambda: y.get(running.id).status is Status.RUNNING, message="running")
            would = _prune(home, "--older-than", "0s", "--dry-run")
            assert would["dry_run"] is True
            gone = set(_ids(would))
            assert {t.id for t in done} | {failed.id} <= gone
            assert not {kept.id, waited.id, later.id, running.id} & gone
            assert all(y.get(i) for i in gone), "a dry run removes nothing"
            only = _prune(home, "--older-than", "0s", "--status", "failed", "--queue", "other")
            assert _ids(only) == [failed.id]
            result = _prune(home, "--older-than", "0s")
            assert set(_ids(result)) == gone - {failed.id}
            left = {t.id for t in y.list()}
            assert {kept.id, waited.id, later.id, running.id} <= left
            assert not ({t.id for t in done} & left)
            text = cli(home, "prune", "--older-than", "1d").stdout.decode()
            assert text == "removed 0 task(s)\n"
            y.kill(running.id)
        finally:
            stop_server(proc)


def test_bad_prune_and_retention_input_is_one_line(home: Path) -> None:
    for args in (("prune",), ("prune", "--older-than", "3x"),
                 ("prune", "--status", "running", "--older-than", "1d"),
                 ("queue", "set", "q", "--retain", "soon"),
                 ("queue", "set", "q", "--retain-count", "-3")):
        done = cli(home, *args)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr


def test_a_bad_queue_set_flag_writes_none_of_the_others(home: Path) -> None:
    """queue set checks every flag before it writes any: a bad --status-dir after a good
    --retain leaves the queue's retention as it was."""
    cli(home, "queue", "set", "q", "--retain", "2d", check=True)
    blocked = home / "not-a-dir"
    blocked.write_text("a file")
    for args in (("--retain", "9d", "--parallel", "3", "--status-dir", str(blocked)),
                 ("--retain", "9d", "--memory-limit", "1G", "--rate", "0/1m"),
                 ("--output-head", "1K", "--retain-count", "-3")):
        done = cli(home, "queue", "set", "q", *args)
        assert done.returncode == 2 and done.stderr.count(b"\n") == 1, (args, done.stderr)
    (queue,) = [q for q in json.loads(cli(home, "queue", "ls", "--json", check=True).stdout)
                if q["name"] == "q"]
    assert (queue["retain"], queue["parallel"], queue["limits"], queue["rate"],
            queue["output_head"]) == (2 * 86400, None, {}, None, None), queue


def test_the_server_prunes_by_count_and_age_per_queue(home: Path) -> None:
    env = dict(os.environ, TASKYARD_RETAIN_COUNT="3", TASKYARD_HEARTBEAT_INTERVAL="0.2",
               TASKYARD_LEASE="2")
    with Yard(home) as y:
        cli(home, "queue", "set", "short", "--retain", "1s", "--retain-count", "0", check=True)
        cli(home, "queue", "set", "forever", "--retain-count", "0", check=True)
        made = {q: [y.submit(["true"], queue=q).id for _ in range(8)]
                for q in ("default", "short", "forever")}
        proc = server_process(home, "--slots", "4", env=env)
        try:
            wait_for(lambda: [t.id for t in y.list(queue="default")] == made["default"][-3:][::-1],
                     timeout=60, message="the newest 3 of default kept")
            wait_for(lambda: y.list(queue="short") == [], timeout=60,
                     message="short's tasks pruned after a second")
            time.sleep(0.5)  # a few more of the server's passes (it prunes at heartbeats)
            assert [t.id for t in y.list(queue="forever")] == made["forever"][::-1]
        finally:
            stop_server(proc)


def _run(store: SQLiteStore, n: int, output: bytes) -> None:
    """n tasks submitted, run (with some output) and finished, as a server records them."""
    for _ in range(n):
        store.submit(TaskSpec(argv=("true",)), by="t")
    for claim in store.claim("s1", n):
        store.append_output("s1", [OutputWrite(claim.task_id, claim.epoch, "stdout", 0, output,
                                               len(output), 0, 1 << 20)])
        store.finish("s1", [Outcome(claim.task_id, claim.epoch, Status.SUCCEEDED, None,
                                    exit_code=0)])


def test_a_store_with_retention_stops_growing_and_compacts(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    pruner, plan_rule = Pruner(store), Rule(newest=1000)
    sizes = []
    for round_ in range(40):  # 20,000 tasks, 500 a round, pruned after each
        _run(store, 500, b"x" * 300)
        pruner.run(rules(store, plan_rule), time.time())
        if round_ in (9, 39):
            with sqlite3.connect(tmp_path / "t.db") as db:  # the WAL folded in
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            sizes.append(os.path.getsize(tmp_path / "t.db"))
    finished = store.count_table()
    assert sum(n for _, _, status, n in finished if status == "succeeded") == 1000
    assert sizes[1] <= sizes[0] * 1.1, f"the file grew from {sizes[0]} to {sizes[1]} bytes"
    pruner.run(rules(store, Rule(newest=10)), time.time())
    before = os.path.getsize(tmp_path / "t.db")
    said = store.compact()
    assert os.path.getsize(tmp_path / "t.db") < before / 2, said
    store.close()
