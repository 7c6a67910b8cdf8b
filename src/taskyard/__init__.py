"""taskyard: launch, supervise, schedule and control long-running work.

Names are imported lazily (PEP 562) so that ``taskyard`` on the command line
only loads what its verb needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Yard": "api",
    "App": "functions", "TaskFunction": "functions", "Context": "context",
    "Steps": "steps", "Step": "steps",
    "Attempt": "model", "Event": "model", "OutputRead": "model", "Progress": "model",
    "Task": "model", "TaskSpec": "model",
    "Reason": "lifecycle", "Status": "lifecycle",
    "InvalidInput": "errors", "NotFound": "errors", "StaleAttempt": "errors",
    "StoreError": "errors", "TaskyardError": "errors", "TransitionError": "errors",
    "UserError": "errors",
}

__all__ = [
    "App", "Context", "Step", "Steps", "TaskFunction",
    "Attempt", "Event", "InvalidInput", "NotFound", "OutputRead", "Progress", "Reason",
    "StaleAttempt", "Status", "StoreError", "Task", "TaskSpec", "TaskyardError",
    "TransitionError", "UserError", "Yard",
]

if TYPE_CHECKING:
    from .api import Yard
    from .context import Context
    from .errors import (
        InvalidInput,
        NotFound,
        StaleAttempt,
        StoreError,
        TaskyardError,
        TransitionError,
        UserError,
    )
    from .functions import App, TaskFunction
    from .lifecycle import Reason, Status
    from .model import Attempt, Event, OutputRead, Progress, Task, TaskSpec
    from .steps import Step, Steps


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'taskyard' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
