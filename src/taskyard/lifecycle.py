"""The one place that defines task statuses and their legal transitions.

Every status change anywhere in taskyard names a :class:`Verb`; the store asks
:func:`sources` which statuses that verb may leave, and guards its UPDATE with
them (``WHERE status IN (...)``), so a racing writer can never make an illegal
transition. Pure: no I/O.

::

    scheduled ─promote─► queued ─claim─► running ◄─pause/resume─► paused
        │                  │                 │
        └─────cancel───────┴──► stopped ◄────┤ finish (killed | shutdown)
                                             ├──► succeeded      (finish)
                                             └──► failed         (finish: exit | signal |
                                                                  spawn | timeout | limit; crash)
    restart: succeeded | failed | stopped ──► queued (the next claim is a new attempt)
    retry:   failed ──► scheduled (retries left; starts again after the backoff)
    abandon: scheduled ──► failed (reason dependency: a task it runs --after failed)
    yield:   running ──► queued (a multi-step task between chunks; its next attempt resumes)
"""

from __future__ import annotations

from enum import StrEnum

from .errors import TransitionError


class Status(StrEnum):
    SCHEDULED = "scheduled"  #: waiting for its start time (issue: scheduling)
    QUEUED = "queued"  #: ready; waits for a free slot
    RUNNING = "running"  #: an attempt is claimed by a server (spawning or live)
    PAUSED = "paused"  #: its process group is stopped (SIGSTOP)
    SUCCEEDED = "succeeded"  #: the attempt exited 0
    FAILED = "failed"  #: see Reason
    STOPPED = "stopped"  #: killed by a user, or by a server shutting down

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def waiting(self) -> bool:
        """Not started yet (scheduled or queued)."""
        return self in WAITING

    @property
    def active(self) -> bool:
        """Owned by a server: a process exists or is about to."""
        return self in ACTIVE


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.STOPPED})
ACTIVE = frozenset({Status.RUNNING, Status.PAUSED})
WAITING = frozenset({Status.SCHEDULED, Status.QUEUED})


class Reason(StrEnum):
    """Why a task ended other than by succeeding."""

    EXIT = "exit"  #: exited non-zero; exit_code set
    SIGNAL = "signal"  #: terminated by a signal nobody asked for; signal set
    SPAWN = "spawn"  #: could not be started; error holds the OS error
    CRASHED = "crashed"  #: its server died while it ran
    TIMEOUT = "timeout"  #: ran past its --timeout; TERM, then KILL after the grace
    DEPENDENCY = "dependency"  #: a task it runs --after failed or was stopped
    KILLED = "killed"  #: a user killed it (stopped)
    SHUTDOWN = "shutdown"  #: its server stopped it while shutting down (stopped)
    EXCEPTION = "exception"  #: a function task raised; error holds type and message
    REPORTED = "reported"  #: it reported an error itself, then exited 0; error holds it
    LIMIT = "limit"  #: stopped by a resource limit; error names it (``cpu limit 60s``)


class Verb(StrEnum):
    """Named transitions. Each maps a set of source statuses to one target."""

    SUBMIT = "submit"
    DEFER = "defer"  #: submit with a start time in the future
    PROMOTE = "promote"
    CLAIM = "claim"
    PAUSE = "pause"
    RESUME = "resume"
    SUCCEED = "succeed"
    FAIL = "fail"
    STOP = "stop"
    CANCEL = "cancel"
    CRASH = "crash"
    RESTART = "restart"
    RETRY = "retry"  #: a failed attempt with retries left goes back to scheduled
    ABANDON = "abandon"  #: a task it waits for failed: it never starts
    YIELD = "yield"  #: a multi-step task gives its slot back between chunks
    TRACK = "track"  #: work taskyard did not start is recorded, running from the outset


_ANY_ACTIVE = ACTIVE
TRANSITIONS: dict[Verb, tuple[frozenset[Status], Status]] = {
    Verb.SUBMIT: (frozenset(), Status.QUEUED),
    Verb.DEFER: (frozenset(), Status.SCHEDULED),
    Verb.PROMOTE: (frozenset({Status.SCHEDULED}), Status.QUEUED),
    Verb.CLAIM: (frozenset({Status.QUEUED}), Status.RUNNING),
    Verb.PAUSE: (frozenset({Status.RUNNING}), Status.PAUSED),
    Verb.RESUME: (frozenset({Status.PAUSED}), Status.RUNNING),
    Verb.SUCCEED: (_ANY_ACTIVE, Status.SUCCEEDED),
    Verb.FAIL: (_ANY_ACTIVE, Status.FAILED),
    Verb.STOP: (_ANY_ACTIVE, Status.STOPPED),
    Verb.CANCEL: (WAITING, Status.STOPPED),
    Verb.CRASH: (_ANY_ACTIVE, Status.FAILED),
    Verb.RESTART: (TERMINAL, Status.QUEUED),
    Verb.RETRY: (frozenset({Status.FAILED}), Status.SCHEDULED),
    Verb.ABANDON: (frozenset({Status.SCHEDULED}), Status.FAILED),
    Verb.YIELD: (frozenset({Status.RUNNING}), Status.QUEUED),
    Verb.TRACK: (frozenset(), Status.RUNNING),
}

#: Which reasons each ending verb may carry.
REASONS: dict[Verb, frozenset[Reason | None]] = {
    Verb.SUCCEED: frozenset({None}),
    Verb.FAIL: frozenset({Reason.EXIT, Reason.SIGNAL, Reason.SPAWN, Reason.TIMEOUT,
                          Reason.EXCEPTION, Reason.REPORTED, Reason.LIMIT}),
    Verb.STOP: frozenset({Reason.KILLED, Reason.SHUTDOWN}),
    Verb.CANCEL: frozenset({Reason.KILLED, Reason.SHUTDOWN}),
    Verb.CRASH: frozenset({Reason.CRASHED}),
    Verb.ABANDON: frozenset({Reason.DEPENDENCY}),
}


def sources(verb: Verb) -> frozenset[Status]:
    """Statuses a task may be in for ``verb`` to apply."""
    return TRANSITIONS[verb][0]


def target(verb: Verb) -> Status:
    """The status ``verb`` leads to."""
    return TRANSITIONS[verb][1]


def check_reason(verb: Verb, reason: Reason | None) -> None:
    """Raise ValueError if ``reason`` does not go with ``verb`` (a programming error)."""
    allowed = REASONS.get(verb, frozenset({None}))
    if reason not in allowed:
        raise ValueError(f"reason {reason!r} is not valid for {verb}")


def require(verb: Verb, current: Status, *, task_id: int | None = None) -> Status:
    """Return the target of ``verb`` from ``current`` or raise :class:`TransitionError`."""
    if current not in sources(verb):
        what = f"task {task_id}" if task_id is not None else "task"
        raise TransitionError(f"cannot {verb} {what}: it is {current}")
    return target(verb)


def is_legal(before: Status | None, after: Status) -> bool:
    """True if some verb leads from ``before`` to ``after`` (for history checks)."""
    for srcs, dst in TRANSITIONS.values():
        if dst is after and (before in srcs or (before is None and not srcs)):
            return True
    return False
