"""Finish hooks in the store: a task's end fills the outbox in the ending transaction,
whoever ends it; a retried attempt takes its hooks back; hook tasks have no hooks; an
outbox row becomes one hook task, however many servers try."""

from __future__ import annotations

import json
import time

from taskyard.lifecycle import Reason, Status
from taskyard.model import TaskSpec
from taskyard.store.base import Outcome
from taskyard.store.hooks import HOOK_QUEUE
from taskyard.store.sqlserver import SqlServerStore

SPEC = TaskSpec(argv=("true",))


def _end(store: SqlServerStore, task_id: int, status: Status = Status.SUCCEEDED,
         reason: Reason | None = None) -> int:
    (claim,) = store.claim("s1", 1)
    assert claim.task_id == task_id
    store.finish("s1", [Outcome(task_id, claim.epoch, status, reason,
                                exit_code=0 if status is Status.SUCCEEDED else 3)])
    return claim.epoch


def test_no_hook_anywhere_queues_nothing(store: SqlServerStore) -> None:
    task = store.submit(SPEC, by="t")
    _end(store, task.id)
    assert store.next_hook_at() is None


def test_task_then_queue_then_server_hook_applies(store: SqlServerStore) -> None:
    store.set_hook_defaults(json.dumps(["server-hook"]), "http://127.0.0.1:9/s")
    store.set_queue_hooks("q", on_finish=json.dumps(["queue-hook"]))
    own = store.submit(SPEC._replace(on_finish=("own-hook", "x")), by="t")
    _end(store, own.id)
    in_q = store.submit(SPEC._replace(queue="q"), by="t")
    _end(store, in_q.id)
    plain = store.submit(SPEC, by="t")
    _end(store, plain.id)
    none = store.submit(SPEC._replace(on_finish=()), by="t")
    _end(store, none.id)
    due = store.due_hook_commands(time.time() + 1)
    assert [(h.task_id, json.loads(h.target)) for h in due] == [
        (own.id, ["own-hook", "x"]), (in_q.id, ["queue-hook"]), (plain.id, ["server-hook"])]
    hooks = store.claim_webhooks("s1", time.time() + 1, 60)
    assert {h.task_id for h in hooks} == {own.id, in_q.id, plain.id, none.id}
    assert store.claim_webhooks("s2", time.time() + 1, 60) == [], "held by s1"
    store.set_queue_hooks("q", url="")  # the queue: no webhook, not even the server's
    other = store.submit(SPEC._replace(queue="q"), by="t")
    _end(store, other.id)
    assert other.id not in {h.task_id for h in store.claim_webhooks("s1", time.time() + 1, 60)}


def test_a_client_cancel_and_a_crash_queue_hooks_too(store: SqlServerStore) -> None:
    store.set_hook_defaults(json.dumps(["h"]), None)
    waiting = store.submit(SPEC._replace(run_at=time.time() + 3600), by="t")
    store.cancel(waiting.id, by="client")
    (hook,) = store.due_hook_commands(time.time() + 1)
    assert (hook.task_id, hook.attempt) == (waiting.id, 0)


def test_a_retried_attempt_is_not_an_end(store: SqlServerStore) -> None:
    store.set_hook_defaults(json.dumps(["h"]), None)
    task = store.submit(SPEC._replace(retries=1, retry_delay=3600.0), by="t")
    _end(store, task.id, Status.FAILED, Reason.EXIT)
    assert store.get(task.id).status is Status.SCHEDULED
    assert store.due_hook_commands(time.time() + 1) == []
    store.promote_due(time.time() + 7200, "s")
    epoch = _end(store, task.id, Status.FAILED, Reason.EXIT)
    (hook,) = store.due_hook_commands(time.time() + 1)
    assert (hook.task_id, hook.attempt) == (task.id, epoch) and epoch == 2


def test_an_outbox_row_makes_one_hook_task_and_hook_tasks_have_no_hooks(
        store: SqlServerStore) -> None:
    store.set_hook_defaults(json.dumps(["h"]), None)
    task = store.submit(SPEC, by="t")
    epoch = _end(store, task.id)
    (hook,) = store.due_hook_commands(time.time() + 1)
    spec = TaskSpec(argv=("h",), queue=HOOK_QUEUE, env={"TASKYARD_TASK_ID": str(task.id)})
    made = store.enqueue_hook(hook.id, spec, by="s1", hook_for=(task.id, epoch))
    assert made is not None and made.hook_for == (task.id, epoch)
    assert store.enqueue_hook(hook.id, spec, by="s2", hook_for=(task.id, epoch)) is None
    assert [h.id for h in store.hooks_of(task.id)] == [made.id]
    assert any((e.detail or "").startswith(f"hook: task {made.id}")
               for e in store.events(task.id))
    _end(store, made.id)
    assert store.next_hook_at() is None, "a hook's end runs no hook"


def test_a_failed_webhook_waits_and_falls_due_again(store: SqlServerStore) -> None:
    store.set_hook_defaults(None, "http://127.0.0.1:9/x")
    task = store.submit(SPEC, by="t")
    _end(store, task.id)
    (hook,) = store.claim_webhooks("s1", time.time(), 60)
    store.webhook_failed(hook.id, "s1", retry_at=time.time() - 1, error="HTTP 500", by="s1",
                         note="webhook: failed (HTTP 500)")
    (again,) = store.claim_webhooks("s2", time.time(), 60)
    assert again.id == hook.id and again.tries == 1
    store.drop_hook(again.id, by="s2", note="webhook: delivered")
    assert store.next_hook_at() is None
    notes = [e.detail for e in store.events(task.id) if e.from_status == e.to_status]
    assert notes == ["webhook: failed (HTTP 500)", "webhook: delivered"]
