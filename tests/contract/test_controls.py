"""Controls as a client sees them: a request written, answered by the owning server."""

from __future__ import annotations

from taskyard import ops
from taskyard.lifecycle import Reason, Status
from taskyard.model import Request, TaskSpec
from taskyard.store.base import Outcome
from taskyard.store.sqlserver import SqlServerStore


class _ServerActsBetweenReads:
    """The store as the client sees it, with the owning server getting a whole turn
    between the client's read of the request and its read of the task: the server
    applies the kill, answers the request, the task ends and its outcome is recorded.
    (On a loaded machine, that is all it takes: a client descheduled between its two
    reads.)"""

    def __init__(self, store: SqlServerStore, epoch: int) -> None:
        self.store, self.epoch, self.acted = store, epoch, False

    def get_request(self, request_id: int) -> Request:
        request = self.store.get_request(request_id)
        if not self.acted:
            self.acted = True
            self.store.complete_request(request_id, "done", None)
            self.store.finish("s1", [Outcome(request.task_id, self.epoch, Status.STOPPED,
                                             Reason.KILLED, signal=15)])
        return request

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_a_kill_answered_just_before_the_task_ended_is_reported_done(
        store: SqlServerStore) -> None:
    """A kill the server applied is a kill done, even when the task it stopped has
    ended by the time the client looks at it (it was reported 'cannot kill task 1:
    the task is stopped' under load)."""
    task = store.submit(TaskSpec(argv=("sleep", "999")), by="t")
    (claim,) = store.claim("s1", 1)
    client = _ServerActsBetweenReads(store, claim.epoch)
    killed = ops.kill(client, task.id, by="dave", timeout=5)  # type: ignore[arg-type]
    assert (killed.status, killed.reason) == (Status.STOPPED, Reason.KILLED)
    assert store.pending_requests("s1") == []


def test_a_request_the_task_ended_before_is_rejected_with_its_status(
        store: SqlServerStore) -> None:
    task = store.submit(TaskSpec(argv=("sleep", "999")), by="t")
    (claim,) = store.claim("s1", 1)
    request = store.add_request(task.id, "pause", None, by="dave")
    store.finish("s1", [Outcome(task.id, claim.epoch, Status.SUCCEEDED, exit_code=0)])
    settled = ops._settled(store, request)
    assert settled is not None and settled.state == "rejected"
    assert settled.result == "the task is succeeded"
