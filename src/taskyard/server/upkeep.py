"""What a server does besides running tasks: at each heartbeat (say it lives, judge its
peers, the cron lease and what its holder does, its own home, start times and memory of
its attempts), and while the store is out of reach (wait for it, reading pipes
meanwhile, then read back what an interrupted commit did).

Functions of a :class:`~taskyard.server.loop.Server`, kept apart from the loop's tick.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..errors import StoreBusy, StoreUnavailable
from ..store.base import Spawned
from ..store.sqlite import file_identity
from . import procs, recovery, tracked

if TYPE_CHECKING:
    from .loop import Server

log = logging.getLogger("taskyard.server")


def beat(server: Server, now: float) -> None:
    """One heartbeat: the store hears from us (and says whether we were fenced or asked
    to stop), then the duties of the beat."""
    settings, store = server.settings, server.store
    stamp = time.time()
    instance = store.heartbeat(server.me, stamp)
    if server.last_beat is not None and stamp - server.last_beat > settings.lease / 2:
        # We were silent a long while ourselves (the store locked, the machine
        # frozen...): so may our peers have been. Judge nobody by silence until
        # they have had a lease to speak again.
        server.judge_silence_at = stamp + settings.lease
        log.warning("no heartbeat for %.1fs (the store was out of reach); judging no"
                    " other server by its silence for the next %gs",
                    stamp - server.last_beat, settings.lease)
    server.last_beat = stamp
    check_home(server)
    recovery.recover(store, server.me, server.host, server.boot_id, time.time(),
                     settings.lease, judge_silence=stamp >= server.judge_silence_at,
                     on_crashed=server.status_crashed if server.status.enabled else None)
    tracked.check_owners(store, server.host, server.boot_id, f"server:{server.me}")
    lead(server, now)
    if server.wake is None:
        server.listen()
    record_start_times(server)
    record_memory(server)
    server.cgroups.sweep()
    for hook in server.on_heartbeat:
        hook()
    if instance.stop_request:
        server.stop_requested(instance.stop_request)


def lead(server: Server, now: float) -> None:
    """The cron lease, and what its holder does: fire schedules (in the tick), follow
    clients' changes into the status files, prune by the retention settings."""
    store = server.store
    leader = store.hold_lease("cron", server.me, time.time(), server.settings.lease)
    if leader and not server.cron_leader:
        log.info("holding the cron lease: this server fires the schedules")
        server.hints.cron = True
    server.cron_leader = leader
    server.status.follow(store.queue_status_dirs())
    if leader and server.status.enabled:  # what clients changed, into the status files
        server.status.sync(store, time.time())
    if leader and server.retention.due(now):
        removed = server.retention.run(now)
        if removed:
            log.info("retention: %d finished task(s) pruned", len(removed))


def check_home(server: Server) -> None:
    """Files of ours removed under us: the store (our writes would go to a file
    nobody else sees: stop now) or the pidfile (another server could start on this
    home, and `server stop` cannot find us: stop once our tasks are done)."""
    if server.stopping == "now":
        return
    gone = server.store.gone()
    if gone is not None:
        log.critical("%s: stopping now; its tasks are killed", gone)
        server.stop("now")
        return
    pidfile = server.settings.pidfile
    if not server.stopping and file_identity(pidfile) != server.pidfile_id:
        log.critical("the pidfile %s was removed or replaced: stopping once the running"
                     " tasks are done, claiming nothing more", pidfile)
        server.stop("warm")


def record_start_times(server: Server) -> None:
    """(pid, start time) names a process for recovery after a crash; read off the
    hot spawn path, for attempts that outlive one heartbeat."""
    found = []
    for c in server.children.values():
        if c.pid_start is None and c.returncode is None:
            c.pid_start = procs.start_time(c.pid)
            server.unrecorded.pop(c.task_id, None)  # recorded here, with its start time
            found.append(Spawned(c.task_id, c.epoch, c.pid, c.pid_start))
    server.batch.spawned.extend(found)


def record_memory(server: Server) -> None:
    """Each running attempt's resident memory now (its process group's, from /proc),
    for ``taskyard stats``: one pass over /proc and one write a heartbeat."""
    running = {c.pid: c for c in server.children.values() if c.returncode is None}
    if not running:
        return
    found = procs.group_rss(running)
    server.store.record_rss(server.me, [(running[pid].task_id, running[pid].epoch, kib)
                                        for pid, kib in found.items()], time.time())


def reconnect(server: Server, exc: StoreUnavailable) -> None:
    """Wait for the store (children's pipes are still read meanwhile), then read
    back what the interrupted commit did and carry on with the rest."""
    busy = isinstance(exc, StoreBusy)  # writers took turns past our patience: no fault
    if busy:
        log.info("the store's write lock is held elsewhere; reading the tasks' pipes, then"
                 " trying again")
    else:
        log.warning("store unavailable, reconnecting: %s", exc)
    delay = 0.1 if not busy else 0.01
    while True:
        server.poller.wait(delay)  # pipes are read, exits reaped meanwhile
        server.enforce_deadlines(time.monotonic())  # timeouts and kills still happen
        try:
            server.store.heartbeat(server.me, time.time())  # Fenced if we were declared dead
            break
        except StoreUnavailable as again:
            delay = min(delay * 2, 5.0)
            log.debug("store still unavailable: %s", again)
    if not busy:
        log.warning("store reachable again")
    reconcile(server)


def reconcile(server: Server) -> None:
    """After a commit whose answer was lost: what it did is read back, what it did not
    is written again, and claims it made are started."""
    batch, server.inflight = server.inflight, None
    if batch is None:
        return
    store, pending = server.store, server.batch
    recorded = store.finished_attempts([(o.task_id, o.epoch) for o in batch.outcomes])
    pending.outcomes[:0] = [o for o in batch.outcomes if (o.task_id, o.epoch) not in recorded]
    pending.output[:0] = batch.output  # chunks are stored once: writing again is safe
    pending.spawned[:0] = batch.spawned
    if batch.claim:  # the claim may have committed: start what we hold but do not run
        # (not the attempts that ended here and wait for their outcome to be written)
        ending = {o.task_id for o in pending.outcomes} | {c.task_id for c in server.done}
        orphans = [c for c in store.open_claims(server.me)
                   if c.task_id not in server.children and c.task_id not in ending]
        if orphans:
            log.warning("read back %d claim(s) of the interrupted commit", len(orphans))
        server.start(orphans)
