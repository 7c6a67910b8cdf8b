"""Finish hooks, as a server runs them.

A task's end fills the store's outbox in the ending transaction (a SQL trigger: see
``store/hooks.py``), whoever ended it: this server, a client, the server recording a
crash. Every server empties it:

* a command hook becomes a task of its own in queue ``_hooks`` (output, exit,
  timeout and events like any task; linked both ways with the task it reports on),
  retried if its server dies while it runs: delivery is at least once, and its
  ``hook_for`` (task, attempt) makes a second delivery recognisable;
* a webhook is POSTed by a thread of this server (the loop never waits on the network),
  signed with HMAC-SHA256, retried with backoff for up to a day; each delivery is an
  event of the reported task.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import shlex
import threading
import time
import urllib.error
import urllib.request
from typing import NamedTuple

from ..config import Settings
from ..errors import NotFound
from ..lifecycle import Status
from ..logs import log_hook_run, quote
from ..model import Attempt, Task, TaskSpec
from ..store.base import Claim, Outcome, ServerStore
from ..store.hooks import HOOK_QUEUE, DueHook
from .statusfiles import Ending, StatusFiles, message

log = logging.getLogger("taskyard.server")

STDIN_TAIL = 64 * 1024  #: the last bytes of the task's stdout a hook reads on its stdin
HOOK_RETRIES = 5  #: a hook task whose server died is run again (at least once)
WEBHOOK_HOLD = 120.0  #: seconds a server holds a webhook it is delivering
WEBHOOK_TIMEOUT = 10.0  #: seconds one POST may take
SENDERS = 4  #: POSTs in flight at once: a receiver that hangs holds one, not all
WEBHOOK_GIVE_UP = 86400.0  #: a webhook undelivered this long after the end is dropped
WEBHOOK_MAX_DELAY = 3600.0
CHECK_SOON = 0.1  #: after this server ended tasks, look at the outbox this soon


class Delivery(NamedTuple):
    hook: DueHook
    ok: bool
    said: str  #: HTTP 200, or what went wrong
    seconds: float = 0.0  #: how long the POST took


class Hooks:
    """This server's side of the finish hooks: turns the outbox into hook tasks and
    webhook deliveries."""

    def __init__(self, settings: Settings, store: ServerStore, me: str,
                 status: StatusFiles) -> None:
        self.settings, self.store, self.me, self.status = settings, store, me, status
        self.by = f"server:{me}"
        self.next_check = 0.0
        self.sender = _Sender(settings.on_finish_secret)

    def publish_defaults(self) -> None:
        """Our on_finish settings, for the trigger that fills the outbox."""
        argv = self.settings.on_finish
        self.store.set_hook_defaults(json.dumps(list(argv)) if argv else None,
                                     self.settings.on_finish_url or None)

    def ended_some(self, now: float) -> None:
        """This server just recorded ends: their hooks may be due."""
        self.next_check = min(self.next_check, now + CHECK_SOON)

    def run(self, now: float, heartbeat: float) -> None:
        """Whatever is due: hook tasks to make, webhooks to send, deliveries to record."""
        self._record_deliveries()
        if now < self.next_check:
            return
        for hook in self.store.due_hook_commands(time.time()):
            self._enqueue(hook)
        room = self.sender.room()
        if room:
            for hook in self.store.claim_webhooks(self.me, time.time(), WEBHOOK_HOLD, room):
                self._send(hook)
        due = self.store.next_hook_at()
        wall = time.time()
        self.next_check = now + heartbeat
        if due is not None:
            self.next_check = min(self.next_check, now + max(0.0, due - wall))

    def close(self) -> None:
        self.sender.stop()

    # -- command hooks -----------------------------------------------------------

    def _enqueue(self, hook: DueHook) -> None:
        try:
            task = self.store.get(hook.task_id)
        except NotFound:
            self.store.drop_hook(hook.id, by=self.by)
            return
        spec = self._spec(hook, task, self._attempt(task, hook.attempt))
        try:
            made = self.store.enqueue_hook(hook.id, spec, by=self.by,
                                           hook_for=(hook.task_id, hook.attempt))
        except NotFound as exc:  # its tenant is gone
            self.store.drop_hook(hook.id, by=self.by, note=f"hook: not run: {exc}")
            return
        if made is not None:
            log.info("hook for task %d attempt %d: task %d runs %s", hook.task_id,
                     hook.attempt, made.id, quote(shlex.join(spec.argv)))

    def _attempt(self, task: Task, epoch: int) -> Attempt | None:
        return next((a for a in self.store.attempts(task.id) if a.epoch == epoch), None)

    def _spec(self, hook: DueHook, task: Task, attempt: Attempt | None) -> TaskSpec:
        env = hook_env(task, attempt, hook.attempt)
        path = (attempt.status_file if attempt is not None and attempt.status_file
                else self.status.path_for(task.id, task.queue))
        if path is not None:
            env["TASKYARD_STATUS_FILE"] = str(path)
        return TaskSpec(argv=tuple(json.loads(hook.target)), queue=HOOK_QUEUE,
                        name=f"on_finish of task {task.id}", env=env, cwd=os.getcwd(),
                        stdin=self._stdout_tail(task.id, hook.attempt),
                        timeout=self.settings.on_finish_timeout, retries=HOOK_RETRIES,
                        retry_on=("crashed",), tenant=task.tenant,
                        meta={"hook_for": {"task": task.id, "attempt": hook.attempt}})

    def _stdout_tail(self, task_id: int, epoch: int) -> bytes:
        if epoch == 0:
            return b""
        try:
            total = self.store.read_output(task_id, "stdout", 0, 0, epoch).total
            start = max(0, total - STDIN_TAIL)
            parts, offset = [], start
            while offset < total:
                read = self.store.read_output(task_id, "stdout", offset, total - offset, epoch)
                parts.append(read.data)
                if read.next_offset <= offset:
                    break
                offset = read.next_offset
            return b"".join(parts)[-STDIN_TAIL:]
        except NotFound:
            return b""

    # -- webhooks ----------------------------------------------------------------

    def _send(self, hook: DueHook) -> None:
        try:
            task = self.store.get(hook.task_id)
        except NotFound:
            self.store.drop_hook(hook.id, by=self.by)
            return
        body = task.to_json()  # the task as show --json has it, and which end this is
        attempt = self._attempt(task, hook.attempt)
        body["delivery"] = {"attempt": hook.attempt, "try": hook.tries + 1,
                            "id": delivery_id(hook),
                            "ended": attempt.to_json() if attempt is not None else None}
        self.sender.put(hook, json.dumps(body).encode())

    def _record_deliveries(self) -> None:
        for done in self.sender.results():
            hook = done.hook
            url = hook.target
            if done.ok:
                self.store.drop_hook(hook.id, by=self.by,
                                     note=f"webhook: delivered to {url} ({done.said})")
                log_hook_run(task=hook.task_id, attempt=hook.attempt, hook=url, outcome="ok",
                             seconds=done.seconds, error=None)
                continue
            wall = time.time()
            if wall - hook.created_at >= WEBHOOK_GIVE_UP:
                self.store.drop_hook(hook.id, by=self.by, note=f"webhook: to {url} failed"
                                     f" ({done.said}); given up after {hook.tries + 1} tries")
                log.warning("hook task=%d: webhook to %s given up: %s", hook.task_id, url,
                            done.said)
                continue
            delay = min(WEBHOOK_MAX_DELAY, 2.0 ** hook.tries)
            self.store.webhook_failed(hook.id, self.me, retry_at=wall + delay, error=done.said,
                                      by=self.by, note=f"webhook: to {url} failed"
                                      f" ({done.said}); next try in {delay:g} s")
            log_hook_run(task=hook.task_id, attempt=hook.attempt, hook=url, outcome="failed",
                         seconds=done.seconds, error=f"{done.said}; next try in {delay:g} s")
            self.next_check = min(self.next_check, time.monotonic() + delay)


def log_hook_ran(claim: Claim, outcome: Outcome, seconds: float) -> None:
    """The server log's line of a hook task that ended on this server."""
    outcome_word = ("ok" if outcome.status is Status.SUCCEEDED else
                    outcome.reason.value if outcome.reason else str(outcome.status))
    log_hook_run(task=int(claim.env.get("TASKYARD_TASK_ID", "0")),
                 attempt=int(claim.env.get("TASKYARD_ATTEMPT", "0")),
                 hook=shlex.join(claim.argv), outcome=outcome_word, seconds=seconds,
                 exit_code=outcome.exit_code, error=outcome.error)


def hook_env(task: Task, attempt: Attempt | None, epoch: int) -> dict[str, str]:
    """What a hook's environment says of the task it reports on."""
    status = attempt.status if attempt is not None and attempt.status else task.status
    reason = attempt.reason if attempt is not None else task.reason
    exit_code = attempt.exit_code if attempt is not None else task.exit_code
    sig = attempt.signal if attempt is not None else task.signal
    error = attempt.error if attempt is not None else task.error
    reported = attempt.report_message if attempt is not None else None
    words = ("" if status is Status.SUCCEEDED else
             reported or message(Ending(status, reason, exit_code, sig, error)))
    return {"TASKYARD_TASK_ID": str(task.id), "TASKYARD_ATTEMPT": str(epoch),
            "TASKYARD_STATUS": str(status), "TASKYARD_REASON": reason.value if reason else "",
            "TASKYARD_EXIT_CODE": "" if exit_code is None else str(exit_code),
            "TASKYARD_SIGNAL": "" if sig is None else str(sig),
            "TASKYARD_ERROR": words, "TASKYARD_NAME": task.name or ""}


def delivery_id(hook: DueHook) -> str:
    """What names a webhook's delivery, the same on every try of it (a receiver drops a
    repeat by it): the task, the attempt it reports on, and the hook's row."""
    return f"{hook.task_id}.{hook.attempt}.{hook.id}"


def signature(secret: str, body: bytes) -> str:
    """The ``Taskyard-Signature`` header: ``sha256=`` HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Sender:
    """A few threads POSTing webhooks (at most :data:`SENDERS` at once), so that the
    loop never waits on them and one receiver that hangs holds up only its own."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.todo: queue.Queue[tuple[DueHook, bytes] | None] = queue.Queue()
        self.done: queue.Queue[Delivery] = queue.Queue()
        self.busy = 0
        self.threads: list[threading.Thread] = []

    def idle(self) -> bool:
        return self.busy == 0

    def room(self) -> int:
        """How many more POSTs may start now."""
        return max(0, SENDERS - self.busy)

    def put(self, hook: DueHook, body: bytes) -> None:
        if len(self.threads) < min(SENDERS, self.busy + 1):
            thread = threading.Thread(target=self._work, name="webhooks", daemon=True)
            thread.start()
            self.threads.append(thread)
        self.busy += 1
        self.todo.put((hook, body))

    def results(self) -> list[Delivery]:
        out = []
        while True:
            try:
                out.append(self.done.get_nowait())
            except queue.Empty:
                break
        self.busy -= len(out)
        return out

    def stop(self) -> None:
        for _ in self.threads:
            self.todo.put(None)

    def _work(self) -> None:
        while (item := self.todo.get()) is not None:
            hook, body = item
            started = time.monotonic()
            done = self._post(hook, body)
            self.done.put(done._replace(seconds=time.monotonic() - started))

    def _post(self, hook: DueHook, body: bytes) -> Delivery:
        headers = {"Content-Type": "application/json", "User-Agent": "taskyard-webhook",
                   "Taskyard-Task": str(hook.task_id), "Taskyard-Attempt": str(hook.attempt),
                   "Taskyard-Delivery": delivery_id(hook),
                   "Taskyard-Try": str(hook.tries + 1)}
        if self.secret:
            headers["Taskyard-Signature"] = signature(self.secret, body)
        request = urllib.request.Request(hook.target, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
                return Delivery(hook, True, f"HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            return Delivery(hook, False, f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return Delivery(hook, False, str(reason)[:200] or type(exc).__name__)
