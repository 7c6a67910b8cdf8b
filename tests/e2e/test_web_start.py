"""The panel's process as a user meets it: started by `server start`, stopped by `server
stop`, reported by `server status`; two homes on one host both start; a login link;
several web processes on one store."""

from __future__ import annotations

import os
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from taskyard.testing import cli, free_port, wait_for, web_process


def _get(url: str, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _answers(url: str) -> bool:
    try:
        return _get(url)[0] == 200
    except OSError:
        return False


def _login(base: str, ticket: str) -> tuple[int, str | None]:
    """POST the ticket as the login page does; (status, session cookie)."""
    request = urllib.request.Request(f"{base}/login", data=f"ticket={ticket}".encode(),
                                     headers={"Sec-Fetch-Site": "same-origin"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        answer = opener.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        answer = exc
    with answer:
        cookie = answer.headers.get("Set-Cookie")
        return answer.status, cookie.split(";")[0] if cookie else None


@pytest.fixture
def started() -> list[Path]:
    homes: list[Path] = []
    yield homes
    for home in homes:
        cli(home, "server", "stop", "--now")


def test_server_start_starts_the_panel_prints_a_login_link_and_stop_stops_it(
        tmp_path: Path, started: list[Path]) -> None:
    home, port = tmp_path / "a", free_port()
    out = cli(home, "server", "start", "--web-listen", f"127.0.0.1:{port}")
    started.append(home)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert f"panel: http://127.0.0.1:{port}/" in text
    link = re.search(rf"(http://127\.0\.0\.1:{port})/login\?ticket=(\S+)", text)
    assert link is not None, text
    base, ticket = link.groups()
    assert _answers(base + "/health")
    status = cli(home, "server", "status").stdout.decode()
    assert f"panel http://127.0.0.1:{port}/" in status
    code, cookie = _login(base, ticket)
    assert code == 303 and cookie is not None
    assert _get(base + "/tasks", cookie)[0] == 200
    assert _login(base, ticket)[0] == 401, "a login link works once"
    assert cli(home, "server", "stop").returncode == 0
    assert not _answers(base + "/health"), "server stop stops the panel"
    assert not (home / "web.json").exists()


def test_two_homes_on_one_host_both_start_and_the_second_says_why_it_has_no_panel(
        tmp_path: Path, started: list[Path]) -> None:
    port = free_port()
    first, second = tmp_path / "a", tmp_path / "b"
    assert cli(first, "server", "start", "--web-listen", f"127.0.0.1:{port}").returncode == 0
    started.append(first)
    out = cli(second, "server", "start", "--web-listen", f"127.0.0.1:{port}")
    started.append(second)
    assert out.returncode == 0, out.stderr
    note = out.stderr.decode().strip().splitlines()
    assert len(note) == 1 and "the panel did not start" in note[0], note
    assert f"127.0.0.1:{port}" in note[0] and "in use" in note[0] and "--web-listen" in note[0]
    assert "panel:" not in out.stdout.decode()
    task = cli(second, "submit", "--", "true").stdout.strip().decode()
    assert cli(second, "wait", task, "--timeout", "30").returncode == 0, "its server runs"
    assert "panel did not start" in cli(second, "server", "status").stdout.decode()


def test_the_panel_can_be_turned_off(tmp_path: Path, started: list[Path]) -> None:
    home = tmp_path / "a"
    out = cli(home, "server", "start", "--no-web")
    started.append(home)
    assert out.returncode == 0 and b"panel:" not in out.stdout and not out.stderr
    assert "the panel is off" in cli(home, "server", "status").stdout.decode()
    cli(home, "server", "stop")
    (home / "taskyard.toml").write_text('[web]\nlisten = ""\n')
    out = cli(home, "server", "start")
    assert out.returncode == 0 and b"panel:" not in out.stdout and not out.stderr
    assert "the panel is off" in cli(home, "server", "status").stdout.decode()


def test_a_bad_address_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["server", "start", "--web-listen", "nowhere"],
                 ["web", "--listen", "127.0.0.1:99999"]):
        out = cli(tmp_path / "a", *args)
        assert out.returncode == 2 and out.stderr.count(b"\n") == 1, out.stderr
        assert b"HOST:PORT" in out.stderr
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "taskyard.toml").write_text('[web]\nport = 1\n')
    out = cli(tmp_path / "b", "web")
    assert out.returncode == 2 and b"[web]" in out.stderr


def test_the_panel_dies_with_a_server_killed_with_kill_9(tmp_path: Path,
                                                         started: list[Path]) -> None:
    home, port = tmp_path / "a", free_port()
    assert cli(home, "server", "start", "--web-listen", f"127.0.0.1:{port}").returncode == 0
    started.append(home)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(base + "/health"), timeout=30, message="the panel answers")
    os.kill(int((home / "server.pid").read_text().split()[0]), signal.SIGKILL)
    wait_for(lambda: not _answers(base + "/health"), timeout=30,
             message="the panel stops with its server")
    out = cli(home, "server", "start", "--web-listen", f"127.0.0.1:{port}")
    assert out.returncode == 0 and b"panel: " in out.stdout, out.stderr


def test_two_web_processes_on_one_postgres_store_share_sessions(tmp_path: Path) -> None:
    from taskyard.testing import postgres_schema
    from tests.contract.conftest import PG_DSN, _require_postgres

    _require_postgres()
    with postgres_schema(PG_DSN, "web") as pg_dsn:
        _two_web_processes(tmp_path, pg_dsn)


def _two_web_processes(tmp_path: Path, pg_dsn: str) -> None:
    env = dict(os.environ, TASKYARD_STORE=pg_dsn)
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    with web_process(home_a, env=env) as a, web_process(home_b, env=env) as b:
        link = cli(home_a, "--store", pg_dsn, "web", "login-url").stdout.decode().strip()
        ticket = link.split("ticket=")[1]
        code, cookie = _login(a, ticket)
        assert code == 303 and cookie is not None
        assert _get(b + "/tasks", cookie)[0] == 200, "a session opened on one serves on both"
        assert _login(b, ticket)[0] == 401, "and the ticket is spent for both"


def test_panel_pages_answer_ids_that_are_no_ids_with_a_4xx(tmp_path: Path) -> None:
    home = tmp_path / "a"
    with web_process(home) as base:
        link = cli(home, "web", "login-url").stdout.decode().strip()
        _, cookie = _login(base, link.split("ticket=")[1])
        assert cookie is not None
        for path in ("/tasks/1180591620717411303424", "/tasks/0", "/tasks/abc",
                     "/tasks/99999999999999999999/download/stdout", "/tasks/7"):
            code, page = _get(base + path, cookie)
            assert code in (404, 422) and "Traceback" not in page, (path, code)
