"""A submit over HTTP on a SQLite store runs on the web process's event loop when the
write lock is free, and waits for it in a worker thread when it is not."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from taskyard import Yard
from taskyard.testing import make_token, wait_for, web_process


def _submit(base: str, token: str, name: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{base}/api/v1/tasks", data=json.dumps({"argv": ["true"], "name": name}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read())


def test_a_submit_while_another_program_holds_the_write_lock_waits_for_it(
        home: Path) -> None:
    token = make_token(home, "operator")
    with web_process(home) as base:
        assert _submit(base, token, "free")[0] == 201
        holder = sqlite3.connect(home / "taskyard.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the fault itself: a writer holding the lock
        answers: list[tuple[int, dict[str, object]]] = []
        waiting = threading.Thread(target=lambda: answers.append(_submit(base, token, "held")))
        waiting.start()
        # the event loop is not blocked meanwhile: the panel's health still answers
        with urllib.request.urlopen(f"{base}/health", timeout=5) as health:
            assert health.status == 200
        time.sleep(0.5)  # the lock held a while, on purpose
        assert waiting.is_alive() and not answers
        holder.execute("ROLLBACK")
        holder.close()
        waiting.join(30)
        assert answers and answers[0][0] == 201 and answers[0][1]["name"] == "held"
    with Yard(home) as y:
        wait_for(lambda: [t.name for t in y.list()] == ["held", "free"])  # newest first


def test_descriptor_data_over_http(home: Path) -> None:
    from taskyard.testing import running_server

    token = make_token(home, "operator")

    def post(body: dict[str, object]) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            f"{base}/api/v1/tasks", data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with running_server(home), web_process(home) as base, Yard(home) as y:
        code, task = post({"argv": ["sh", "-c", "cat <&3; cat <&4"], "fds": {"3": "a "},
                           "fds_base64": {"4": "Yg=="}})
        assert code == 201 and task["fds"] == [3, 4], task
        done = y.wait(int(str(task["id"])), timeout=30)
        assert done is not None and y.logs(done.id).data == b"a b"
        for bad in ({"fds": {"2": "x"}}, {"fds": {"x": "y"}}, {"fds_base64": {"3": "!"}},
                    {"fds": {"3": "x"}, "fds_base64": {"3": "eA=="}}):
            code, problem = post({"argv": ["true"], **bad})
            assert code == 422 and str(problem["field"]).startswith("fds"), problem
