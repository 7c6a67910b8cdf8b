"""Exception hierarchy. Every error a user can cause is a :class:`UserError`.

The CLI turns a ``UserError`` into a one-line message and exit code 2; the HTTP
API will turn it into a 4xx with the offending field. Anything else is a bug or
an environment failure and is reported as such.
"""

from __future__ import annotations


class TaskyardError(Exception):
    """Base of every error raised by taskyard."""


class UserError(TaskyardError):
    """Bad input or a request that cannot be honoured; nothing was changed.

    ``field`` names the offending input (an option, argument or JSON field)
    when there is one, so interfaces can point at it.
    """

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(UserError):
    """No such task (or other object)."""


class InvalidInput(UserError):
    """A value failed validation."""


class TransitionError(UserError):
    """The task is in a state where the requested change is not legal."""


class StaleAttempt(TaskyardError):
    """A write carried an attempt epoch that is no longer the task's current one.

    Raised to the writer only; it means someone else now owns the task (or the
    attempt already ended) and the write was rejected, not applied.
    """


class StoreError(TaskyardError):
    """The store could not be read or written (I/O error, corruption, lock)."""


class SchemaTooNew(StoreError):
    """The store was written by a newer taskyard; refuse rather than corrupt it."""


class ConfigError(UserError):
    """A setting is invalid (bad value in taskyard.toml, environment or flags)."""



class Fenced(StoreError):
    """This server was declared dead by another one: it must stop (its attempts are
    no longer its own)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now (a lost connection): a server waits and
    reconnects, then reconciles what it was writing."""


class StoreBusy(StoreUnavailable):
    """SQLite's write lock stayed held elsewhere past a server's patience (others are
    writing): the server reads its tasks' pipes meanwhile and tries again; not a fault."""
