"""Model-based check of the store: random interleavings of user verbs and server
writes (some of them stale) against a small reference model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from taskyard import lifecycle
from taskyard.errors import NotFound, StaleAttempt, TransitionError
from taskyard.lifecycle import Reason, Status
from taskyard.model import TaskSpec
from taskyard.store.base import Outcome

from .conftest import BACKENDS

SPEC = TaskSpec(argv=("true",))
OWNERS = ("a", "b")


class StoreModel(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.store = BACKENDS[self.backend](Path(self.dir))
        self.status: dict[int, Status] = {}
        self.epoch: dict[int, int] = {}
        self.owner: dict[int, str] = {}

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _pick(self, index: int) -> int | None:
        ids = sorted(self.status)
        return ids[index % len(ids)] if ids else None

    @rule()
    def submit(self) -> None:
        task = self.store.submit(SPEC, by="u")
        self.status[task.id], self.epoch[task.id] = Status.QUEUED, 0

    @rule(owner=st.sampled_from(OWNERS), n=st.integers(1, 3))
    def claim(self, owner: str, n: int) -> None:
        queued = sorted(i for i, s in self.status.items() if s is Status.QUEUED)
        got = self.store.claim(owner, n)
        assert [c.task_id for c in got] == queued[:n]
        for c in got:
            self.epoch[c.task_id] += 1
            assert c.epoch == self.epoch[c.task_id]
            self.status[c.task_id], self.owner[c.task_id] = Status.RUNNING, owner

    @precondition(lambda self: self.status)
    @rule(index=st.integers(0, 50), owner=st.sampled_from(OWNERS),
          skew=st.sampled_from((0, 0, -1, 1)),
          status=st.sampled_from((Status.SUCCEEDED, Status.FAILED, Status.STOPPED)))
    def finish(self, index: int, owner: str, skew: int, status: Status) -> None:
        task_id = self._pick(index)
        assert task_id is not None
        epoch = self.epoch[task_id] + skew
        reason = {Status.FAILED: Reason.EXIT, Status.STOPPED: Reason.KILLED}.get(status)
        stale = self.store.finish(owner, [Outcome(task_id, epoch, status, reason)])
        legit = (self.status[task_id].active and skew == 0
                 and self.owner.get(task_id) == owner)
        assert (stale == []) == legit
        if legit:
            self.status[task_id] = status

    @precondition(lambda self: self.status)
    @rule(index=st.integers(0, 50), paused=st.booleans())
    def pause(self, index: int, paused: bool) -> None:
        task_id = self._pick(index)
        assert task_id is not None
        verb = lifecycle.Verb.PAUSE if paused else lifecycle.Verb.RESUME
        ok = self.status[task_id] in lifecycle.sources(verb)
        try:
            self.store.set_paused(self.owner.get(task_id, "a"), task_id,
                                  self.epoch[task_id], paused, "s")
        except StaleAttempt:
            assert not ok or self.owner.get(task_id, "a") != self.owner.get(task_id)
            return
        assert ok
        self.status[task_id] = lifecycle.target(verb)

    @precondition(lambda self: self.status)
    @rule(index=st.integers(0, 50))
    def cancel(self, index: int) -> None:
        task_id = self._pick(index)
        assert task_id is not None
        result = self.store.cancel(task_id, by="u")
        assert (result is not None) == self.status[task_id].waiting
        if result is not None:
            self.status[task_id] = Status.STOPPED

    @precondition(lambda self: self.status)
    @rule(index=st.integers(0, 50))
    def restart(self, index: int) -> None:
        task_id = self._pick(index)
        assert task_id is not None
        try:
            self.store.restart(task_id, by="u")
        except TransitionError:
            assert not self.status[task_id].terminal
            return
        assert self.status[task_id].terminal
        self.status[task_id] = Status.QUEUED

    @precondition(lambda self: self.status)
    @rule(index=st.integers(0, 50))
    def delete(self, index: int) -> None:
        task_id = self._pick(index)
        assert task_id is not None
        try:
            self.store.delete(task_id)
        except TransitionError:
            assert not self.status[task_id].terminal
            return
        assert self.status.pop(task_id).terminal
        with pytest.raises(NotFound):
            self.store.get(task_id)

    @invariant()
    def store_matches_model(self) -> None:
        for task in self.store.list_tasks():
            assert task.status is self.status[task.id]
            assert task.attempt == self.epoch[task.id]
        assert len(self.store.list_tasks()) == len(self.status)

    @invariant()
    def history_is_legal(self) -> None:
        for task_id in list(self.status)[-3:]:
            events = self.store.events(task_id)
            assert all(lifecycle.is_legal(e.from_status, e.to_status) for e in events)
            assert events[-1].to_status is self.status[task_id]



for _name in sorted(BACKENDS):
    _machine = type(f"StoreModel_{_name}", (StoreModel,), {"backend": _name})
    _machine.TestCase.settings = settings(max_examples=40, stateful_step_count=30,
                                          deadline=None)
    globals()[f"TestStoreModel_{_name}"] = _machine.TestCase
