"""web: the HTTP API and the panel (``taskyard web``) against the issue's speed goals.

1. **Browsing a million tasks**, on SQLite and on PostgreSQL (``web_fill`` fills
   the stores with bulk SQL through the tasks table, so the store's triggers keep
   the counts). One keep-alive client (``http.client``) asks each page
   ``SAMPLES`` times in turn, after a warm-up: the panel's HTML pages (``/tasks``,
   its next page, filtered by status + queue and by a metadata key, ``/tasks/ID``
   of a succeeded, a queued and a running task) with a session cookie (``POST
   /login`` with the token), and the API (``/api/v1/tasks`` with
   ``/api/v1/tasks/counts`` as one sample of the list "with counts", the same
   filters, ``/api/v1/tasks/ID``) with a bearer token. Round trips are against the
   real ``taskyard web``; then a second pass against ``bench/web_timed.py`` (the same
   command with one ASGI layer more, adding ``Server-Timing``) gives the time inside
   the server for the same requests, and the store calls each route makes are timed
   in this process as well. p50/p95 of each.
2. **Live output**: a fake server (an instance row of this process) claims a task on
   the same million-task store and appends a line to its stdout every 40-80 ms
   (``append_output``, one transaction each); a client follows
   ``/api/v1/tasks/ID/output/stdout/live`` (SSE). Latency: from the commit returning
   to the event's arrival, p50/p95.
3. **Submits over HTTP**: one keep-alive client POSTs ``{"argv": ["true"]}`` to
   ``/api/v1/tasks`` back to back (no task server), tasks/s; on a fresh SQLite store
   (the goal's case) and on the million-task stores; beside it ``Yard.submit`` in a
   loop on a fresh store.
4. **Throughput with 10 browsers**: bench/throughput.py's 1,000 pre-submitted `true`
   tasks on a 2-slot server, with 10 other tasks running beside them (each printing
   a line every 0.1 s, run by a second server of 10 slots on the same store, whose
   full slots keep it from claiming any `true`), once without a web process and once
   with ``taskyard web`` serving 10 browsers, each on one of those tasks' page as
   the panel's script does it (the page, the output read, the live SSE stream, the
   page's live fragment every 2 s) and one more on ``/tasks`` (its fragment every
   3 s). Interleaved, repeated; the ratio is taken within each repetition. Also the
   plain throughput run (no second server) for reference.
5. **The task loop with the panel open**: after each of those runs, submit->claim of
   single `true` tasks on the then idle 2-slot server (as bench/latency.py), with and
   without the panel open; and the server's CPU per task from the runs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import common
import throughput
import web_fill
from common import Section
from taskyard import Yard
from taskyard.store.base import Instance, OutputWrite
from taskyard.testing import free_port, make_token, server_process, stop_server, wait_for

DSN = os.environ.get("TASKYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
TIMED = Path(__file__).resolve().parent / "web_timed.py"
PAGE_GOAL, FILTER_GOAL, DETAIL_GOAL, LIVE_GOAL = 100.0, 150.0, 50.0, 50.0
SUBMIT_GOAL = 1000.0
BROWSERS = 10
CHATTY = ("import sys, time\nfor i in range(100000):\n"
          "    print(f'line {i}: compiling module {i % 97} of the build', flush=True)\n"
          "    time.sleep(0.1)\n")
Samples = dict[str, list[float]]


# -- HTTP ---------------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    body: bytes
    ms: float  #: the round trip
    server_ms: float | None  #: Server-Timing app;dur, when the server says it
    headers: dict[str, str]


class Client:
    """One keep-alive HTTP/1.1 connection (``http.client``: little work on our side)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        url = urllib.parse.urlsplit(base)
        self.root = url.path.rstrip("/")
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port,
                                               timeout=60)
        self.headers = dict(headers or {})

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        t0 = time.perf_counter()
        self.conn.request(method, self.root + path, body=body,
                          headers={**self.headers, **(headers or {})})
        answer = self.conn.getresponse()
        data = answer.read()
        ms = (time.perf_counter() - t0) * 1000
        found = {k.lower(): v for k, v in answer.getheaders()}
        timing = found.get("server-timing", "")
        server = float(timing.split("dur=")[1]) if "dur=" in timing else None
        return Answer(answer.status, data, ms, server, found)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def close(self) -> None:
        self.conn.close()


def login(base: str, token: str) -> Client:
    """A client holding a panel session (``POST /login`` with ``token=``)."""
    client = Client(base)
    answer = client.request("POST", "/login", urllib.parse.urlencode({"token": token}).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})
    cookie = answer.headers.get("set-cookie", "").split(";", 1)[0]
    if answer.status != 303 or not cookie.startswith("taskyard_session="):
        raise RuntimeError(f"login: {answer.status} {answer.body[:200]!r}")
    client.headers["Cookie"] = cookie
    return client


@contextlib.contextmanager
def web_server(home: Path, env: dict[str, str] | None = None,
               timed: bool = False) -> Iterator[tuple[str, int]]:
    """``taskyard web`` on a free port for the block (``timed``: bench/web_timed.py);
    yields its base URL and pid once /health answers."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    head = [sys.executable, str(TIMED)] if timed else [sys.executable, "-m", "taskyard"]
    with open(home / "web.log", "ab") as log:
        proc = subprocess.Popen([*head, "--home", str(home), "web", "--listen",
                                 f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, env=env)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"taskyard web exited {proc.returncode}; see {home}/web.log")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        return False

    try:
        wait_for(healthy, timeout=60, message="taskyard web answers /health")
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- 1. browsing a million tasks ----------------------------------------------------------


class Route(NamedTuple):
    label: str  #: the row's name
    paths: tuple[str, ...]  #: asked one after the other; a sample is their sum
    goal: float  #: p95 in ms
    panel: bool  #: with the session cookie (else the bearer token)


def routes(ids: dict[str, int], next_cursor: str, panel_cursor: str) -> list[Route]:
    meta = "meta.customer=c42"
    filt = "status=failed&queue=reports"
    with_counts = ("/api/v1/tasks?limit=50", "/api/v1/tasks/counts")
    return [
        Route("panel /tasks (first page, counts)", ("/tasks",), PAGE_GOAL, True),
        Route("panel /tasks next page", (f"/tasks?cursor={panel_cursor}",), PAGE_GOAL, True),
        Route("panel /tasks status+queue", (f"/tasks?{filt}",), FILTER_GOAL, True),
        Route("panel /tasks metadata key", (f"/tasks?{meta}",), FILTER_GOAL, True),
        Route("panel /tasks/ID succeeded", (f"/tasks/{ids['middle_succeeded']}",),
              DETAIL_GOAL, True),
        Route("panel /tasks/ID queued", (f"/tasks/{ids['queued_last']}",), DETAIL_GOAL, True),
        Route("panel /tasks/ID running", (f"/tasks/{ids['running']}",), DETAIL_GOAL, True),
        Route("API list + counts (first page)", with_counts, PAGE_GOAL, False),
        Route("API list next page", (f"/api/v1/tasks?limit=50&cursor={next_cursor}",),
              PAGE_GOAL, False),
        Route("API list + counts status+queue",
              (f"/api/v1/tasks?{filt}", f"/api/v1/tasks/counts?{filt}"), FILTER_GOAL, False),
        Route("API list + counts metadata key",
              (f"/api/v1/tasks?{meta}", f"/api/v1/tasks/counts?{meta}"), FILTER_GOAL, False),
        Route("API task succeeded", (f"/api/v1/tasks/{ids['middle_succeeded']}",),
              DETAIL_GOAL, False),
        Route("API task queued", (f"/api/v1/tasks/{ids['queued_last']}",), DETAIL_GOAL, False),
        Route("API task running", (f"/api/v1/tasks/{ids['running']}",), DETAIL_GOAL, False),
    ]


def _cursors(api: Client) -> tuple[str, str]:
    page = json.loads(api.get("/api/v1/tasks?limit=50").body)
    cursor = str(page["next_cursor"])
    return cursor, cursor  # the panel's cursor is the same keyset cursor (50 a page)


def ask_all(base: str, token: str, ids: dict[str, int], samples: int,
            warmup: int) -> dict[str, tuple[list[float], list[float]]]:
    """Round trips and server times (when the server says them) of every route,
    ``samples`` each, the routes taken in turn so that drift hits them alike."""
    api = Client(base, {"Authorization": f"Bearer {token}"})
    panel = login(base, token)
    try:
        found: dict[str, tuple[list[float], list[float]]] = {}
        todo = routes(ids, *_cursors(api))
        for i in range(warmup + samples):
            for route in todo:
                client = panel if route.panel else api
                total = server = 0.0
                for path in route.paths:
                    answer = client.get(path)
                    if answer.status != 200:
                        raise RuntimeError(f"GET {path}: {answer.status} {answer.body[:300]!r}")
                    total += answer.ms
                    server += answer.server_ms or 0.0
                if i >= warmup:
                    rt, st = found.setdefault(route.label, ([], []))
                    rt.append(total)
                    st.append(server)
        return found
    finally:
        api.close()
        panel.close()


def store_times(location: str, ids: dict[str, int], samples: int) -> Samples:
    """The store calls the routes make, timed here (no HTTP, no rendering)."""
    from taskyard.lifecycle import Status
    from taskyard.store import open_store
    from taskyard.store.filters import TaskFilter

    store = open_store(location)
    first = TaskFilter()
    filt = TaskFilter(status=(Status.FAILED,), queue="reports")
    meta = TaskFilter(meta=(("customer", "c42"),))
    cursor = store.browse(first, limit=50).next_before

    def detail(task_id: int, waits: bool) -> Callable[[], object]:
        def run() -> object:
            found = (store.get(task_id), store.attempts(task_id), store.events(task_id))
            return store.waiting(task_id) if waits else found
        return run

    calls: dict[str, Callable[[], object]] = {
        "store: browse + count_tasks (first page)":
            lambda: (store.browse(first, limit=50), store.count_tasks(first)),
        "store: browse next page": lambda: store.browse(first, before=cursor, limit=50),
        "store: browse + count_tasks status+queue":
            lambda: (store.browse(filt, limit=50), store.count_tasks(filt)),
        "store: browse + count_tasks metadata key":
            lambda: (store.browse(meta, limit=50), store.count_tasks(meta)),
        "store: get + attempts + events (succeeded)": detail(ids["middle_succeeded"], False),
        "store: ... + waiting (queued)": detail(ids["queued_last"], True),
    }
    found: Samples = {}
    try:
        for i in range(samples + 3):
            for label, call in calls.items():
                t0 = time.perf_counter()
                call()
                if i >= 3:
                    found.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
    finally:
        store.close()
    return found


# -- 2. live output ------------------------------------------------------------------------


class SseReader(threading.Thread):
    """Follows a live stream; notes when each ``output`` event arrived, by its end
    offset (the event id)."""

    def __init__(self, base: str, token: str, path: str) -> None:
        super().__init__(daemon=True)
        url = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port,
                                               timeout=30)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}",
                                                "Accept": "text/event-stream"})
        self.answer = self.conn.getresponse()
        if self.answer.status != 200:
            raise RuntimeError(f"live: {self.answer.status} {self.answer.read()[:300]!r}")
        self.arrived: dict[int, float] = {}
        self.events = 0
        self.stopping = False

    def run(self) -> None:
        buffer = b""
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError, AttributeError):
            while not self.stopping:
                data = self.answer.read1(65536)
                if not data:
                    return
                now = time.perf_counter()
                buffer += data
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    self.events += 1
                    lines = dict(line.split(b": ", 1) for line in event.split(b"\n")
                                 if b": " in line)
                    if lines.get(b"event") == b"output" and b"id" in lines:
                        self.arrived[int(lines[b"id"])] = now
                    if lines.get(b"event") == b"end":
                        return

    def close(self) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            if self.conn.sock is not None:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()
        self.join(5)


def live_latency(base: str, token: str, location: str, writes: int) -> list[float]:
    """ms from an output commit to its SSE event (a fake server writes, see above)."""
    from taskyard.store import open_store

    store = open_store(location)
    owner = f"benchlive{os.getpid()}"
    now = time.time()
    try:
        store.register(Instance(owner, socket.gethostname(), "bench", os.getpid(), 1, now,
                                now, None, None))
        from taskyard import ops
        from taskyard.model import TaskSpec

        spec = TaskSpec(argv=("sh", "-c", "sleep 3600"), queue="bench-live", priority=10**6)
        task_id = ops.submit(store, spec, by="bench").id
        claims = store.claim(owner, 1)
        if [c.task_id for c in claims] != [task_id]:
            raise RuntimeError(f"the fake server claimed {claims}, not task {task_id}")
        epoch = claims[0].epoch
        reader = SseReader(base, token, f"/api/v1/tasks/{task_id}/output/stdout/live")
        reader.start()
        committed: dict[int, float] = {}
        offset = 0
        rng = random.Random(7)
        try:
            for i in range(writes):
                data = f"line {i}: {'x' * 60}\n".encode()
                store.append_output(owner, [OutputWrite(task_id, epoch, "stdout", offset, data,
                                                        offset + len(data), 0, 1 << 20)])
                offset += len(data)
                committed[offset] = time.perf_counter()
                time.sleep(rng.uniform(0.04, 0.08))
            common.poll(lambda: offset in reader.arrived, 10.0, "the last SSE event")
        finally:
            reader.close()
        return [(reader.arrived[end] - at) * 1000 for end, at in committed.items()
                if end in reader.arrived]
    finally:
        with contextlib.suppress(Exception):
            store.unregister(owner, time.time())
        store.close()


# -- 3. submits over HTTP ---------------------------------------------------------------------


def http_submits(base: str, token: str, n: int) -> float:
    """tasks/s of ``n`` POST /api/v1/tasks from one keep-alive client (after a warm-up)."""
    client = Client(base, {"Authorization": f"Bearer {token}",
                           "Content-Type": "application/json"})
    body = json.dumps({"argv": ["true"], "queue": "bench-submit"}).encode()
    try:
        for _ in range(20):
            client.request("POST", "/api/v1/tasks", body)
        t0 = time.perf_counter()
        for _ in range(n):
            answer = client.request("POST", "/api/v1/tasks", body)
            if answer.status != 201:
                raise RuntimeError(f"submit: {answer.status} {answer.body[:300]!r}")
        return n / (time.perf_counter() - t0)
    finally:
        client.close()


def yard_submits(home: Path, n: int) -> float:
    with common.yard(home) as y:
        for _ in range(20):
            y.submit(["true"])
        t0 = time.perf_counter()
        for _ in range(n):
            y.submit(["true"])
        return n / (time.perf_counter() - t0)


# -- the per-store part ----------------------------------------------------------------------


GOALS = [  # (goal, routes whose worst p95 it is judged on, ms)
    ("first page with counts", ("panel /tasks (first page, counts)",
                                "API list + counts (first page)"), PAGE_GOAL),
    ("next page", ("panel /tasks next page", "API list next page"), PAGE_GOAL),
    ("filtered list", ("panel /tasks status+queue", "panel /tasks metadata key",
                       "API list + counts status+queue", "API list + counts metadata key"),
     FILTER_GOAL),
    ("task detail", ("panel /tasks/ID succeeded", "panel /tasks/ID queued",
                     "panel /tasks/ID running", "API task succeeded", "API task queued",
                     "API task running"), DETAIL_GOAL),
]


def one_store(s: Section, backend: str, filled: web_fill.Filled, home: Path,
              env: dict[str, str] | None, samples: int, quick: bool) -> None:
    """Everything measured on one million-task store."""
    token = make_token(home, "admin", env=env)
    warmup = 3 if quick else 10
    with web_server(home, env) as (base, _pid):
        shipped = ask_all(base, token, filled.ids, samples, warmup)
        live = live_latency(base, token, filled.location, 30 if quick else 150)
        submits = http_submits(base, token, 200 if quick else 1000)
    fixed_env = dict(env or os.environ, BENCH_WEB_NODELAY="1")
    with web_server(home, fixed_env, timed=True) as (base, _pid):
        fixed = ask_all(base, token, filled.ids, samples, warmup)
        fixed_submits = http_submits(base, token, 200 if quick else 1000)
    p95: dict[str, tuple[float, float, float]] = {}
    for route in routes(filled.ids, "", ""):
        rt, (rt_fixed, st) = shipped[route.label][0], fixed[route.label]
        p95[route.label] = (common.quantile(rt, 0.95), common.quantile(rt_fixed, 0.95),
                            common.quantile(st, 0.95))
        s.add(f"{backend} {route.label}", common.median(rt), "ms",
              f"p95 {common.fmt(p95[route.label][0])}; TCP_NODELAY p50"
              f" {common.fmt(common.median(rt_fixed))} p95 {common.fmt(p95[route.label][1])};"
              f" in server p50 {common.fmt(common.median(st))}"
              f" p95 {common.fmt(p95[route.label][2])}")
    for label, values in store_times(filled.location, filled.ids, samples).items():
        s.add(f"{backend} {label}", common.median(values), "ms",
              f"p95 {common.fmt(common.quantile(values, 0.95))}")
    for goal, labels, limit in GOALS:
        for i, how in enumerate(("round trip", "round trip, TCP_NODELAY", "in server")):
            worst = max(labels, key=lambda label: p95[label][i])
            s.ratio(f"{backend} {goal} p95, {how} (ms)", p95[worst][i], f"<= {limit:g}",
                    worst if p95[worst][i] > limit else "")
    lat95 = common.quantile(live, 0.95)
    s.add(f"{backend} live output: commit -> SSE event", common.median(live), "ms",
          f"p95 {common.fmt(lat95)}, max {common.fmt(max(live))}; {len(live)} writes")
    s.ratio(f"{backend} live output commit->event p95 (ms)", lat95, f"<= {LIVE_GOAL:g}")
    size = f"{filled.ids['newest']:,}-task store"
    s.add(f"{backend} submits over HTTP, {size}", submits, "tasks/s",
          "one keep-alive client, no task server")
    s.add(f"{backend} submits over HTTP, {size}, TCP_NODELAY", fixed_submits, "tasks/s")
    s.ratio(f"{backend} HTTP submits, big store (tasks/s)", submits, f">= {SUBMIT_GOAL:g}",
            f"TCP_NODELAY: {common.fmt(fixed_submits)}")


def browse_section(s: Section, n: int, samples: int, quick: bool) -> None:
    with common.tempdir("web-sqlite") as tmp:
        filled = web_fill.sqlite_store(n, tmp / "taskyard.db")
        how = (f"filled in {filled.seconds:.0f} s" if filled.seconds
               else f"cached in {web_fill.CACHE.name}/")
        s.notes.append(f"SQLite store of {n:,} tasks: {how}, copied in"
                       f" {filled.copy_seconds:.1f} s")
        one_store(s, "sqlite", filled, tmp, None, samples, quick)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        s.notes.append("PostgreSQL not measured: psycopg is not installed")
        return
    try:
        with common.tempdir("web-pg") as tmp, web_fill.postgres_store(DSN, n) as filled:
            s.notes.append(f"PostgreSQL store of {n:,} tasks: filled in {filled.seconds:.0f} s"
                           " (bulk INSERT ... SELECT through the triggers, counts folded,"
                           " VACUUM ANALYZE)")
            env = dict(os.environ, TASKYARD_STORE=filled.location)
            one_store(s, "postgres", filled, tmp, env, samples, quick)
    except OSError as exc:
        s.notes.append(f"PostgreSQL not measured: {exc}")


# -- 4./5. throughput and the task loop with 10 browsers ------------------------------------------


class Browser(threading.Thread):
    """A panel tab on a task's page as panel.js does it: the page, the output's size,
    the live SSE stream, and the page's live fragment every 2 s; or (``task_id`` None)
    on /tasks, its fragment every 3 s."""

    def __init__(self, base: str, token: str, task_id: int | None) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.task_id = base, token, task_id
        self.stop = threading.Event()
        self.requests = 0
        self.sse: SseReader | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported by the benchmark, not lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        panel = login(self.base, self.token)
        try:
            if self.task_id is None:
                page, every = "/tasks", 3.0
            else:
                page, every = f"/tasks/{self.task_id}", 2.0
                panel.get(page)
                out = panel.get(f"/api/v1/tasks/{self.task_id}/output/stdout?limit=0")
                total = int(out.headers.get("taskyard-total", "0"))
                self.sse = SseReader(self.base, self.token, f"/api/v1/tasks/{self.task_id}"
                                     f"/output/stdout/live?offset={max(0, total - 65536)}")
                self.sse.start()
            fragment = page + "?fragment=live"
            while not self.stop.wait(every):
                if panel.get(fragment).status != 200:
                    raise RuntimeError(f"GET {fragment} failed")
                self.requests += 1
        finally:
            panel.close()
            if self.sse is not None:
                self.sse.close()


@contextlib.contextmanager
def browsers(home: Path, tasks: list[int]) -> Iterator[tuple[int, list[Browser]]]:
    """A web process on ``home`` with a browser on each task's page and one on /tasks;
    yields the web process's pid."""
    token = make_token(home, "admin")
    with web_server(home) as (base, pid):
        tabs = [Browser(base, token, t) for t in tasks] + [Browser(base, token, None)]
        for tab in tabs:
            tab.start()
        try:
            common.poll(lambda: all(t.sse is None or t.sse.events > 1 for t in tabs[:-1])
                        or any(t.error for t in tabs), 30.0, "browsers following output")
            yield pid, tabs
        finally:
            for tab in tabs:
                tab.stop.set()
            for tab in tabs:
                tab.join(10)
        errors = [t.error for t in tabs if t.error]
        if errors:
            raise RuntimeError(f"browsers failed: {errors[:3]}")


class Run(NamedTuple):
    rate: float  #: tasks/s from ready to the last finish
    server_cpu: float  #: ms of the 2-slot server's CPU per task
    web_cpu: float  #: share of one CPU the web process used during the run (0: none)
    claim: list[float]  #: submit->claim ms of single tasks afterwards
    sse_events: int  #: events the browsers received during the run


def loop_latency(y: Yard, count: int) -> list[float]:
    found = []
    for i in range(count + 5):
        t0 = time.time()
        task = y.submit(["true"], queue="bench-latency")
        done = common.task_finished(y, task.id, 10.0, interval=0.002)
        if i >= 5 and done.started_at is not None:
            found.append((done.started_at - t0) * 1000)
    return found


def chatty_run(n: int, with_web: bool, claims: int) -> Run:
    """1,000 `true` on a 2-slot server beside 10 running chatty tasks (another server),
    with or without the web process and its browsers."""
    with common.tempdir("web-tput") as tmp:
        home, side = tmp / "home", tmp / "side"
        db = home / "taskyard.db"
        with common.yard(home) as y:
            chatty = [y.submit([sys.executable, "-c", CHATTY], name=f"chatty-{i}",
                               queue="logs").id for i in range(BROWSERS)]
            side_env = dict(os.environ, TASKYARD_STORE=str(db))
            side_server = server_process(side, "--slots", str(BROWSERS), env=side_env)
            try:
                common.poll(lambda: all(y.get(t).status.value == "running" for t in chatty)
                            or None, 30.0, "chatty tasks running")
                for _ in range(n):
                    y.submit(["true"])
                with contextlib.ExitStack() as stack:
                    web_pid, tabs = 0, list[Browser]()
                    if with_web:
                        web_pid, tabs = stack.enter_context(browsers(home, chatty))
                    events0 = sum(t.sse.events for t in tabs if t.sse is not None)
                    with common.taskyard_server(home, throughput.SLOTS) as proc:
                        ready = time.time()
                        web0 = common.cpu_seconds(web_pid) if web_pid else 0.0
                        cpu0 = common.cpu_seconds(proc.pid)
                        common.poll(lambda: not y.list(status=common.UNFINISHED, queue="default",
                                                       limit=1), 30.0 + n / 20, "true tasks")
                        cpu = common.cpu_seconds(proc.pid) - cpu0
                        done = time.time()
                        web = (common.cpu_seconds(web_pid) - web0) / (done - ready) \
                            if web_pid else 0.0
                        events = sum(t.sse.events for t in tabs if t.sse is not None) - events0
                        tasks = y.list(queue="default")
                        latency = loop_latency(y, claims)
                common.check_succeeded(tasks, n)
                end = max(t.finished_at or 0.0 for t in tasks)
            finally:
                stop_server(side_server)
    return Run(n / (end - ready), cpu / n * 1000, web, latency, events)


def loop_section(s: Section, n: int, repeat: int, claims: int) -> None:
    plain: list[float] = []
    runs: dict[bool, list[Run]] = {False: [], True: []}
    for i in range(repeat):  # interleaved, the order alternating
        order = (False, True) if i % 2 == 0 else (True, False)
        plain.append(throughput.taskyard_presubmitted(n)[throughput.TASKYARD])
        for with_web in order:
            runs[with_web].append(chatty_run(n, with_web, claims))
    off, on = runs[False], runs[True]
    s.add("throughput, plain (bench/throughput.py)", common.median(plain), "tasks/s",
          common.spread(plain))
    for label, got in (("no web", off), ("web + 10 browsers", on)):
        rates = [r.rate for r in got]
        s.add(f"throughput beside 10 chatty tasks, {label}", common.median(rates), "tasks/s",
              common.spread(rates))
        cpu = [r.server_cpu for r in got]
        s.add(f"server CPU per task, {label}", common.median(cpu), "ms", common.spread(cpu))
        lat = [x for r in got for x in r.claim]
        s.add(f"submit->claim p50, {label}", common.median(lat), "ms",
              f"p95 {common.fmt(common.quantile(lat, 0.95))}; {len(lat)} tasks")
    web_cpu = [r.web_cpu * 100 for r in on]
    s.add("web process CPU during the run", common.median(web_cpu), "% of 1",
          common.spread(web_cpu))
    events = [r.sse_events for r in on]
    s.add("SSE events the browsers got during the run", common.median(events), "events")
    pairs = {"on": [r.rate for r in on], "off": [r.rate for r in off]}
    value, note = common.paired(pairs, "on", "off")
    s.ratio("throughput with web + 10 browsers / without", value, ">= 0.9", note)
    value, note = common.paired({"off": pairs["off"], "plain": plain}, "off", "plain")
    s.ratio("throughput beside 10 chatty tasks / plain", value, "", note)
    on50 = [common.median(r.claim) for r in on]
    off50 = [common.median(r.claim) for r in off]
    value, note = common.paired({"on": on50, "off": off50}, "on", "off")
    s.ratio("task loop: submit->claim p50, panel open / closed", value, "<= 1.1", note)
    on95 = [common.quantile(r.claim, 0.95) for r in on]
    off95 = [common.quantile(r.claim, 0.95) for r in off]
    value, note = common.paired({"on": on95, "off": off95}, "on", "off")
    s.ratio("task loop: submit->claim p95, panel open / closed", value, "<= 1.1", note)
    value, note = common.paired({"on": [r.server_cpu for r in on],
                                 "off": [r.server_cpu for r in off]}, "on", "off")
    s.ratio("task loop: server CPU per task, panel open / closed", value, "<= 1.1", note)


# -- the section ---------------------------------------------------------------------------------


def fresh_submits(s: Section, n: int, repeat: int) -> None:
    rates: Samples = {"http": [], "fixed": [], "yard": []}
    for _ in range(repeat):
        with common.tempdir("web-submit") as tmp:
            home = tmp / "home"
            token = make_token(home, "operator")
            with web_server(home) as (base, _pid):
                rates["http"].append(http_submits(base, token, n))
            with web_server(home, dict(os.environ, BENCH_WEB_NODELAY="1"), timed=True) as (
                    base, _pid):
                rates["fixed"].append(http_submits(base, token, n))
            rates["yard"].append(yard_submits(tmp / "yard", n))
    for key, label in (("http", "submits over HTTP, fresh SQLite store"),
                       ("fixed", "submits over HTTP, fresh SQLite store, TCP_NODELAY"),
                       ("yard", "Yard.submit loop, fresh SQLite store")):
        s.add(label, common.median(rates[key]), "tasks/s", common.spread(rates[key]))
    s.ratio("HTTP submits, fresh SQLite (tasks/s)", common.median(rates["http"]),
            f">= {SUBMIT_GOAL:g}", common.spread(rates["http"]))
    s.ratio("HTTP submits, fresh SQLite, TCP_NODELAY (tasks/s)", common.median(rates["fixed"]),
            f">= {SUBMIT_GOAL:g}", common.spread(rates["fixed"]))
    value, note = common.paired(rates, "fixed", "yard")
    s.ratio("HTTP submits (TCP_NODELAY) / Yard.submit", value, "", note)


def run(quick: bool, repeat: int, parts: tuple[str, ...] = ("browse", "submit", "loop")
        ) -> Section:
    n = 100_000 if quick else 1_000_000
    samples = 30 if quick else 100
    s = Section(f"web: taskyard web on {n:,}-task stores; 1 keep-alive client; ms p50"
                " (lower is better) unless said")
    if "submit" in parts:
        fresh_submits(s, 500 if quick else 2000, max(1, repeat))
    if "browse" in parts:
        browse_section(s, n, samples, quick)
    if "loop" in parts:
        loop_section(s, 200 if quick else 1000, max(1, repeat), 20 if quick else 60)
    s.notes.append("round trip: against taskyard web as it is; TCP_NODELAY and in server:"
                   " the same requests to bench/web_timed.py with TCP_NODELAY on the"
                   " listening socket (Server-Timing from the application's start to the"
                   " answer's start); since 9ee8bb9 taskyard web sets TCP_NODELAY itself,"
                   " so both passes have it")
    return s


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(common.render(run("--quick" in sys.argv, 1 if "--quick" in sys.argv else 3,
                            tuple(args) or ("browse", "submit", "loop"))))
