"""A claim fixes its attempt's status file: the queue's own dir as the claim's
transaction reads it (a change a moment ago counts), else the claiming server's
status_dir; nothing for a store whose claims write no status files."""

from __future__ import annotations

from taskyard.model import TaskSpec
from taskyard.store.sqlite import SQLiteStore


def _claim(store: SQLiteStore, queue: str) -> tuple[int, str | None]:
    task = store.submit(TaskSpec(argv=("true",), queue=queue), by="t")
    (claim,) = store.claim("s1", 1)
    (attempt,) = store.attempts(task.id)
    assert attempt.status_file == claim.status_file
    return task.id, claim.status_file


def test_a_claim_fixes_its_attempts_status_file(store: SQLiteStore) -> None:
    assert _claim(store, "q")[1] is None  # no status files on this store's claims
    store.claim_status_root = ""  # a server without a status_dir
    assert _claim(store, "q")[1] is None
    store.set_queue_status_dir("q", "/srv/q-status")
    task_id, path = _claim(store, "q")
    assert path == f"/srv/q-status/q/{task_id}"
    store.claim_status_root = "/srv/status"
    task_id, path = _claim(store, "other")
    assert path == f"/srv/status/{task_id}"
    store.set_queue_status_dir("q", "/srv/moved")  # read by the very next claim
    task_id, path = _claim(store, "q")
    assert path == f"/srv/moved/q/{task_id}"
    store.set_queue_status_dir("q", None)
    task_id, path = _claim(store, "q")
    assert path == f"/srv/status/{task_id}"
    assert store.attempts(task_id)[0].to_json()["status_file"] == path


def test_a_queue_with_a_slash_gets_a_folder_inside_its_directory(
        store: SQLiteStore) -> None:
    """`/` is written %2F, so `../evil` is a folder of DIR, not DIR's sibling."""
    store.claim_status_root = ""
    store.set_queue_status_dir("../evil", "/srv/q")
    task_id, path = _claim(store, "../evil")
    assert path == f"/srv/q/..%2Fevil/{task_id}"
