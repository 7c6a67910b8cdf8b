"""A real deployment for the HTTP API tests: a task server and ``taskyard web`` on one
home and one store (a SQLite file, or a fresh schema of the test PostgreSQL), with
tokens of every role, global and of two tenants, and httpx clients holding them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from taskyard.testing import make_token, postgres_schema, server_process, stop_server, web_process

TASKS = Path(__file__).parent.parent / "integration" / "tasks_pkg"
STORES = ("sqlite", "postgres")
ROLES = ("viewer", "operator", "admin")
#: The tenants every deployment has, besides "default".
TENANTS = ("acme", "rival")
#: Output bound of the deployment's server: 10 MiB fits whole, 11 MiB loses some.
HEAD_MIB, TAIL_MIB = 1.0, 9.25
PROBLEM = "application/problem+json"


def clean_env() -> dict[str, str]:
    """This process's environment without stray TASKYARD_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")}


class Deployment:
    """A running web process (``base``) in front of a store; ``tokens[who]`` are the
    secrets of ``viewer``/``operator``/``admin`` (every tenant) and of
    ``acme-viewer``, ``rival-admin``... (one tenant)."""

    def __init__(self, kind: str, home: Path, base: str) -> None:
        self.kind, self.home, self.base = kind, home, base
        self.tokens: dict[str, str] = {}
        self.token_ids: dict[str, int] = {}
        self._clients: dict[str, httpx.Client] = {}

    def client(self, who: str | None = "admin") -> httpx.Client:
        """A client sending ``who``'s token (None: no token at all)."""
        key = who or ""
        if key not in self._clients:
            headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
            self._clients[key] = httpx.Client(base_url=self.base, headers=headers,
                                              timeout=60)
        return self._clients[key]

    def call(self, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client(who).request(method, path, **kw)

    def submit(self, who: str = "admin", **body: Any) -> dict[str, Any]:
        answer = self.call(who, "POST", "/api/v1/tasks", json=body)
        assert answer.status_code == 201, answer.text
        data: dict[str, Any] = answer.json()
        return data

    def task(self, task_id: int, who: str = "admin") -> dict[str, Any]:
        answer = self.call(who, "GET", f"/api/v1/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data

    def wait(self, task_id: int, who: str = "admin", timeout: float = 30) -> dict[str, Any]:
        """The task once it ended (fails if it did not within ``timeout``)."""
        answer = self.call(who, "GET", f"/api/v1/tasks/{task_id}/wait",
                           params={"timeout": timeout})
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        assert not data["timed_out"], data
        return data

    def add_token(self, role: str, tenant: str | None = None, **extra: Any) -> tuple[int, str]:
        answer = self.call("admin", "POST", "/api/v1/tokens",
                           json={"role": role, "tenant": tenant, **extra})
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"]), str(answer.json()["token"])

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _toml(store: str | None) -> str:
    lines = [f"store = {json.dumps(store)}"] if store else []
    lines += ["[server]", "slots = 8", "poll_interval = 0.2", "kill_grace = 1",
              f"output_head_mib = {HEAD_MIB}", f"output_tail_mib = {TAIL_MIB}",
              'imports = "ty_tasks"', f"import_path = {json.dumps(str(TASKS))}",
              # the task server starts no web process of its own: the tests start one
              "[web]", 'listen = ""']
    return "\n".join(lines) + "\n"


@contextmanager
def deployment(kind: str, tmp: Path, *, server: bool = True) -> Iterator[Deployment]:
    """A deployment on a ``kind`` store (see the module's docstring); ``server``: with a
    task server, so that tasks run."""
    env = clean_env()
    with ExitStack() as stack:
        store = None
        if kind == "postgres":
            from tests.contract.conftest import PG_DSN, _require_postgres

            _require_postgres()
            store = stack.enter_context(postgres_schema(PG_DSN, "web"))
        home = tmp / "home"
        home.mkdir(parents=True)
        (home / "taskyard.toml").write_text(_toml(store))
        if server:
            proc = server_process(home, env=env)
            stack.callback(stop_server, proc)
        base = stack.enter_context(web_process(home, env=env))
        yard = Deployment(kind, home, base)
        stack.callback(yard.close)
        yard.tokens["admin"] = make_token(home, "admin", env=env)
        for tenant in TENANTS:
            answer = yard.call("admin", "POST", "/api/v1/tenants", json={"name": tenant})
            assert answer.status_code == 201, answer.text
        for role in ROLES:
            for tenant in (None, *TENANTS):
                who = f"{tenant}-{role}" if tenant else role
                if who != "admin":
                    yard.token_ids[who], yard.tokens[who] = yard.add_token(role, tenant)
        yield yard


class Route(NamedTuple):
    """A route of the API, the least role it needs, and whether a tenant's token may
    use it (``global_only``: queues, tenants, tokens and servers are every tenant's)."""

    method: str
    path: str  #: as in the OpenAPI document
    role: str
    global_only: bool = False

    @property
    def takes_task(self) -> bool:
        return "{task_id}" in self.path

    def request(self, *, task_id: int = 1, name: str = "x", token_id: int = 1,
                tag: str = "") -> tuple[str, dict[str, Any]]:
        """The URL and httpx arguments of a well-formed call (``tag`` makes the names
        it creates unique)."""
        url = (self.path.replace("{task_id}", str(task_id)).replace("{stream}", "stdout")
               .replace("{name}", name).replace("{token_id}", str(token_id)))
        body = SAMPLE_BODIES.get((self.method, self.path))
        kw: dict[str, Any] = {}
        if callable(body):
            kw["json"] = body(tag)
        elif isinstance(body, bytes):
            kw["content"] = body
        elif body is not None:
            kw["json"] = body
        if self.path.endswith("/wait"):
            kw["params"] = {"timeout": 0}
        return url, kw


ROUTES = [
    Route("GET", "/metrics", "viewer"),
    Route("GET", "/api/v1/openapi.json", "viewer"),
    Route("GET", "/api/v1/docs", "viewer"),
    Route("POST", "/api/v1/tasks", "operator"),
    Route("GET", "/api/v1/tasks", "viewer"),
    Route("GET", "/api/v1/tasks/counts", "viewer"),
    Route("POST", "/api/v1/tasks/bulk", "operator"),
    Route("POST", "/api/v1/tasks/batch", "operator"),
    Route("GET", "/api/v1/tasks/{task_id}", "viewer"),
    Route("DELETE", "/api/v1/tasks/{task_id}", "operator"),
    Route("GET", "/api/v1/tasks/{task_id}/wait", "viewer"),
    Route("POST", "/api/v1/tasks/{task_id}/kill", "operator"),
    Route("POST", "/api/v1/tasks/{task_id}/pause", "operator"),
    Route("POST", "/api/v1/tasks/{task_id}/resume", "operator"),
    Route("POST", "/api/v1/tasks/{task_id}/restart", "operator"),
    Route("POST", "/api/v1/tasks/{task_id}/stdin", "operator"),
    Route("POST", "/api/v1/tasks/{task_id}/signal", "operator"),
    Route("PATCH", "/api/v1/tasks/{task_id}/meta", "operator"),
    Route("GET", "/api/v1/tasks/{task_id}/config", "viewer"),
    Route("PATCH", "/api/v1/tasks/{task_id}/config", "operator"),
    Route("GET", "/api/v1/tasks/{task_id}/output/{stream}", "viewer"),
    Route("GET", "/api/v1/tasks/{task_id}/output/{stream}/live", "viewer"),
    Route("GET", "/api/v1/tasks/{task_id}/messages", "viewer"),
    Route("GET", "/api/v1/tasks/{task_id}/messages/live", "viewer"),
    Route("GET", "/api/v1/queues", "viewer"),
    Route("PATCH", "/api/v1/queues/{name}", "admin", global_only=True),
    Route("GET", "/api/v1/schedules", "viewer"),
    Route("POST", "/api/v1/schedules", "admin"),
    Route("GET", "/api/v1/schedules/{name}", "viewer"),
    Route("PATCH", "/api/v1/schedules/{name}", "admin"),
    Route("DELETE", "/api/v1/schedules/{name}", "admin"),
    Route("POST", "/api/v1/schedules/{name}/run", "admin"),
    Route("GET", "/api/v1/tenants", "viewer"),
    Route("POST", "/api/v1/tenants", "admin", global_only=True),
    Route("PATCH", "/api/v1/tenants/{name}", "admin", global_only=True),
    Route("GET", "/api/v1/servers", "viewer", global_only=True),
    Route("GET", "/api/v1/stats", "viewer"),
    Route("GET", "/api/v1/tokens", "admin", global_only=True),
    Route("POST", "/api/v1/tokens", "admin", global_only=True),
    Route("DELETE", "/api/v1/tokens/{token_id}", "admin", global_only=True),
]

SAMPLE_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/tasks"): {"argv": ["true"], "name": "sample"},
    ("POST", "/api/v1/tasks/batch"): {"tasks": [{"argv": ["true"], "name": "sample"}]},
    ("POST", "/api/v1/tasks/bulk"): {"action": "kill", "dry_run": True,
                                     "filter": {"name": "no such task"}},
    ("POST", "/api/v1/tasks/{task_id}/stdin"): b"",
    ("POST", "/api/v1/tasks/{task_id}/signal"): {"name": "go"},
    ("PATCH", "/api/v1/tasks/{task_id}/meta"): {"touched": True},
    ("PATCH", "/api/v1/tasks/{task_id}/config"): {"touched": True},
    ("PATCH", "/api/v1/queues/{name}"): {"paused": False},
    ("POST", "/api/v1/schedules"): lambda tag: {
        "name": f"sample-{tag}", "expr": "@daily", "tz": "UTC", "paused": True,
        "task": {"argv": ["true"]}},
    ("PATCH", "/api/v1/schedules/{name}"): {"paused": True},
    ("POST", "/api/v1/tenants"): lambda tag: {"name": f"sample-{tag}"},
    ("PATCH", "/api/v1/tenants/{name}"): {"enabled": True},
    ("POST", "/api/v1/tokens"): {"role": "viewer"},
}


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def assert_problem(answer: httpx.Response, status: int, field: str | None = None) -> None:
    """An RFC 9457 problem with this status (and field, when given)."""
    assert answer.status_code == status, (answer.request.method, answer.request.url,
                                          answer.status_code, answer.text[:500])
    assert answer.headers["content-type"] == PROBLEM, answer.headers
    data = answer.json()
    assert data["status"] == status and data["title"] and data["detail"], data
    if field is not None:
        assert data.get("field") == field, data
