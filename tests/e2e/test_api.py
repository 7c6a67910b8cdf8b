"""The Python API as a program drives it: bad arguments are UserErrors naming the
field and change nothing; a Yard may be shared between threads."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskyard import Yard
from taskyard.errors import StoreError, UserError
from taskyard.testing import running_server, wait_for

BAD_CALLS: list[tuple[str, Callable[[Yard], Any]]] = [
    ("argv", lambda y: y.submit("echo hi")),  # a string would be split into letters
    ("argv", lambda y: y.submit({"a": 1})),
    ("argv", lambda y: y.submit(None)),  # type: ignore[arg-type]
    ("argv", lambda y: y.submit(["echo", 5])),  # type: ignore[list-item]
    ("stdin", lambda y: y.submit(["cat"], stdin="text")),  # type: ignore[arg-type]
    ("queue", lambda y: y.submit(["true"], queue=None)),  # type: ignore[arg-type]
    ("name", lambda y: y.submit(["true"], name=5)),  # type: ignore[arg-type]
    ("env", lambda y: y.submit(["true"], env="A=B")),  # type: ignore[arg-type]
    ("meta", lambda y: y.submit(["true"], meta=[1])),  # type: ignore[arg-type]
    ("cwd", lambda y: y.submit(["true"], cwd=b"/tmp")),  # type: ignore[arg-type]
    ("priority", lambda y: y.submit(["true"], priority=1.5)),  # type: ignore[arg-type]
    ("priority", lambda y: y.submit(["true"], priority=True)),
    ("retries", lambda y: y.submit(["true"], retries="2")),  # type: ignore[arg-type]
    ("timeout", lambda y: y.submit(["true"], timeout=10**400)),
    ("timeout", lambda y: y.submit(["true"], timeout=True)),
    ("delay", lambda y: y.submit(["true"], delay=math.nan)),
    ("at", lambda y: y.submit(["true"], run_at=10**400)),
    ("retry_on", lambda y: y.submit(["true"], retry_on="exit")),
    ("after", lambda y: y.submit(["true"], after=5)),  # type: ignore[arg-type]
    ("id", lambda y: y.submit(["true"], after=[2**70])),
    ("kwargs", lambda y: y.submit_function("f", [("a", 1)])),  # type: ignore[arg-type]
    ("kwargs", lambda y: y.submit_function("f", "")),  # type: ignore[arg-type]
    ("function", lambda y: y.submit_function(None)),  # type: ignore[arg-type]
    ("id", lambda y: y.get(True)),
    ("id", lambda y: y.kill("1")),  # type: ignore[arg-type]
    ("id", lambda y: y.get(1.0)),  # type: ignore[arg-type]
    ("id", lambda y: y.get(2**63)),
    ("timeout", lambda y: y.wait(1, timeout=math.nan)),
    ("timeout", lambda y: y.wait(1, timeout="1")),  # type: ignore[arg-type]
    ("offset", lambda y: y.logs(1, offset=math.nan)),  # type: ignore[arg-type]
    ("limit", lambda y: y.logs(1, limit=1.5)),  # type: ignore[arg-type]
    ("limit", lambda y: y.list(limit=-1)),
    ("status", lambda y: y.list(status=5)),  # type: ignore[arg-type]
    ("queue", lambda y: y.list(queue="\ud800")),
    ("queue", lambda y: y.pause_queue(None)),  # type: ignore[arg-type]
    ("queue", lambda y: y.resume_queue(b"q")),  # type: ignore[arg-type]
    ("queue", lambda y: y.set_queue_parallel(None, 1)),  # type: ignore[arg-type]
    ("schedule", lambda y: y.get_schedule("\ud800")),
    ("tenant", lambda y: y.enable_tenant(5)),  # type: ignore[arg-type]
    ("data", lambda y: y.send(1, "text")),  # type: ignore[arg-type]
    ("meta", lambda y: y.meta(1, None)),  # type: ignore[arg-type]
    ("signal", lambda y: y.kill(1, "STOP")),
]


@pytest.mark.parametrize(("field", "call"), BAD_CALLS, ids=[f"{f}-{i}" for i, (f, _)
                                                            in enumerate(BAD_CALLS)])
def test_bad_arguments_are_user_errors_and_change_nothing(
        home: Path, field: str, call: Callable[[Yard], Any]) -> None:
    with Yard(home) as y:
        y.submit(["true"])
        before = (y.list(), y.queues())
        with pytest.raises(UserError) as caught:
            call(y)
        assert caught.value.field == field, caught.value
        assert (y.list(), y.queues()) == before


def test_a_cycle_in_a_meta_patch_is_refused(home: Path) -> None:
    cycle: dict[str, Any] = {}
    cycle["a"] = cycle
    with Yard(home) as y:
        task = y.submit(["true"])
        with pytest.raises(UserError, match="nested"):
            y.meta(task.id, cycle)


def test_a_closed_yard_says_so(home: Path) -> None:
    y = Yard(home)
    y.close()
    with pytest.raises(StoreError, match="closed"):
        y.submit(["true"])


def test_one_yard_shared_by_threads_loses_and_doubles_nothing(home: Path) -> None:
    errors: list[BaseException] = []
    ids: list[int] = []
    with Yard(home) as y:
        def work(n: int) -> None:
            try:
                for i in range(30):
                    ids.append(y.submit(["true"], meta={"who": f"{n}-{i}"}).id)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        stored = y.list()
        assert sorted(t.id for t in stored) == sorted(ids) and len(ids) == 240


def test_kill_escalates_to_kill_however_term_is_spelled(home: Path) -> None:
    with running_server(home, "--slots", "1", "--kill-grace", "0.5"), Yard(home) as y:
        task = y.submit(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
        wait_for(lambda: y.get(task.id).pid, message="started")
        y.kill(task.id, "015")
        ended = y.wait(task.id, timeout=10)
        assert ended is not None and ended.signal == 9


def test_tokens_from_the_python_api(home: Path) -> None:
    """create_token shows the secret once; only its hash is stored; revoke by name;
    a login link; bad roles, tenants and durations are UserErrors naming the field."""
    import sqlite3

    from taskyard import access

    with Yard(home) as y:
        y.add_tenant("acme")
        token, secret = y.create_token("operator", tenant="acme", name="ci", expires_in=3600)
        assert secret.startswith("tyk_") and token.role == "operator"
        assert token.tenant == "acme" and token.expires_at is not None
        assert [t.name for t in y.tokens()] == ["ci"]
        assert access.authenticate(y._store, secret) == token
        with sqlite3.connect(home / "taskyard.db") as db:
            stored = db.execute("SELECT secret_hash FROM tokens").fetchone()[0]
        assert secret not in stored and stored == access.digest(secret)
        assert y.revoke_token("ci").revoked_at is not None
        assert access.authenticate(y._store, secret) is None
        assert "/login?ticket=" in y.login_url()
        for field, call in (("role", lambda: y.create_token("boss")),
                            ("tenant", lambda: y.create_token("viewer", tenant="nobody")),
                            ("expires", lambda: y.create_token("viewer", expires_in=-1)),
                            ("token", lambda: y.revoke_token(None))):  # type: ignore[arg-type]
            with pytest.raises(UserError) as caught:
                call()
            assert caught.value.field == field
