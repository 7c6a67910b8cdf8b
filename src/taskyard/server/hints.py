"""What the server loop should look at again: set by events (a wake hint, a poll, a
commit), cleared by the tick step that looked. A step whose hint is down does no read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Hints:
    queue: bool = True  #: claim: queued tasks may be there to start
    request: bool = True  #: apply_requests: users' controls may be waiting
    due: bool = True  #: re-read when the next scheduled task is due
    promote: bool = True  #: run the promote step (dependencies may be met or failed)
    cron: bool = True  #: re-read the schedules (one was added, or a poll came)
    control: bool = False  #: a control for this server (a stop): heartbeat at once

    def poll(self) -> None:
        """A poll: look at everything again (a lost hint costs latency, never work)."""
        self.queue = self.request = self.due = self.promote = self.cron = True
