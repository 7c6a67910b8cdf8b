from __future__ import annotations

import pytest

from taskyard import lifecycle
from taskyard.errors import TransitionError
from taskyard.lifecycle import Reason, Status, Verb


def test_every_verb_has_a_target_and_only_restart_and_retry_leave_terminal() -> None:
    for verb in Verb:
        assert isinstance(lifecycle.target(verb), Status)
    leaving_terminal = {v for v in Verb if lifecycle.sources(v) & lifecycle.TERMINAL}
    assert leaving_terminal == {Verb.RESTART, Verb.RETRY}
    assert lifecycle.sources(Verb.RETRY) == {Status.FAILED}


@pytest.mark.parametrize(("verb", "current", "ok"), [
    (Verb.CLAIM, Status.QUEUED, True),
    (Verb.CLAIM, Status.RUNNING, False),
    (Verb.PAUSE, Status.RUNNING, True),
    (Verb.PAUSE, Status.PAUSED, False),
    (Verb.RESUME, Status.RUNNING, False),
    (Verb.CANCEL, Status.SCHEDULED, True),
    (Verb.CANCEL, Status.RUNNING, False),
    (Verb.RESTART, Status.SUCCEEDED, True),
    (Verb.RESTART, Status.QUEUED, False),
    (Verb.STOP, Status.PAUSED, True),
])
def test_require(verb: Verb, current: Status, ok: bool) -> None:
    if ok:
        assert lifecycle.require(verb, current) is lifecycle.target(verb)
    else:
        with pytest.raises(TransitionError, match=f"cannot {verb}"):
            lifecycle.require(verb, current, task_id=3)


def test_reasons_go_with_their_verbs() -> None:
    lifecycle.check_reason(Verb.FAIL, Reason.EXIT)
    lifecycle.check_reason(Verb.SUCCEED, None)
    with pytest.raises(ValueError):
        lifecycle.check_reason(Verb.SUCCEED, Reason.EXIT)
    with pytest.raises(ValueError):
        lifecycle.check_reason(Verb.STOP, Reason.CRASHED)


def test_is_legal_matches_the_table() -> None:
    assert lifecycle.is_legal(None, Status.QUEUED)
    assert lifecycle.is_legal(Status.RUNNING, Status.PAUSED)
    assert lifecycle.is_legal(Status.FAILED, Status.QUEUED)
    assert not lifecycle.is_legal(Status.SUCCEEDED, Status.RUNNING)
    assert not lifecycle.is_legal(Status.QUEUED, Status.SUCCEEDED)
    assert lifecycle.is_legal(None, Status.RUNNING)  # a tracked task begins running
    assert not lifecycle.is_legal(None, Status.PAUSED)


def test_status_groups() -> None:
    assert Status.RUNNING.active and Status.PAUSED.active
    assert Status.QUEUED.waiting and not Status.QUEUED.terminal
    assert {s for s in Status if s.terminal} == {Status.SUCCEEDED, Status.FAILED, Status.STOPPED}
