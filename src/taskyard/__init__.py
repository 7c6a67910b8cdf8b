"""taskyard: launch, supervise, schedule and control long-running work."""

from __future__ import annotations

from .api import Yard
from .errors import (
    InvalidInput,
    NotFound,
    StaleAttempt,
    StoreError,
    TaskyardError,
    TransitionError,
    UserError,
)
from .lifecycle import Reason, Status
from .model import Attempt, Event, OutputRead, Progress, Task, TaskSpec

__version__ = "0.1.0"

__all__ = [
    "Attempt", "Event", "InvalidInput", "NotFound", "OutputRead", "Progress", "Reason",
    "StaleAttempt", "Status", "StoreError", "Task", "TaskSpec", "TaskyardError",
    "TransitionError", "UserError", "Yard",
]
