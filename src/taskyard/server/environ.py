"""The environments a server gives: its tasks' (its own, without TASKYARD_* settings of
its own starting, plus where the store is) and its function workers'."""

from __future__ import annotations

import os

from ..config import Settings


def task_env(settings: Settings) -> dict[str, str]:
    """The base environment of every task this server starts."""
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("TASKYARD_")]:
        del env[key]
    env["TASKYARD_HOME"] = str(settings.home)
    if settings.store:  # `taskyard progress` in a task must find the store we run from
        env["TASKYARD_STORE"] = settings.store
    env["TASKYARD_MESSAGES_TAIL"] = str(settings.messages_tail)  # for `taskyard emit`
    return env


def worker_env(base: dict[bytes, bytes], settings: Settings) -> dict[bytes, bytes]:
    """A function worker's: the tasks' own, and what the worker is to import and run."""
    env = dict(base)
    for key, value in (("TASKYARD_WORKER_IMPORTS", settings.imports),
                       ("TASKYARD_IMPORT_PATH", settings.import_path),
                       ("TASKYARD_WORKER_MAX_TASKS", str(settings.worker_max_tasks)),
                       ("TASKYARD_WORKER_MAX_MIB", str(settings.worker_max_mib)),
                       ("TASKYARD_WORKER_ASYNC", str(settings.async_concurrency))):
        if value:
            env[key.encode()] = value.encode("utf-8", "surrogateescape")
    return env
