"""``taskyard ls`` and ``Yard.list`` as users drive them: the filters, newest first,
pages with ``--cursor``, ``--counts``, the terminal's default page, and bad input as
one line with exit 2."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from taskyard import Yard
from taskyard.errors import InvalidInput
from taskyard.testing import cli


def ok(home: Path, *args: str) -> Any:
    done = cli(home, *args)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout) if "--json" in args else done.stdout.decode()


def listed(home: Path, *args: str) -> list[int]:
    return [t["id"] for t in ok(home, "ls", "--json", *args)["items"]]


@pytest.fixture
def made(home: Path) -> list[int]:
    with Yard(home) as y:
        y.add_tenant("acme")
        return [y.submit(["echo", "a"], name="nightly-a", meta={"run": {"n": 1}}).id,
                y.submit(["echo", "b"], name="nightly-b", queue="q2", tenant="acme",
                         meta={"run": {"n": 2}, "who": "ann"}).id,
                y.submit(["sleep", "9"], name="other", meta={"who": "bob"}).id]


def test_filters_newest_first(home: Path, made: list[int]) -> None:
    a, b, c = made
    assert listed(home) == [c, b, a]
    assert listed(home, "--name", "nightly-*") == [b, a]
    assert listed(home, "--queue", "q2") == listed(home, "--tenant", "acme") == [b]
    assert listed(home, "--meta", "run.n=2") == [b]
    assert listed(home, "--meta", "who=ann", "--meta", "run.n=2") == [b]
    assert listed(home, "--meta", 'who="bob"') == [c]
    assert listed(home, "--text", "sleep") == [c]
    assert listed(home, "--kind", "command") == [c, b, a]
    assert listed(home, "--kind", "function") == listed(home, "--kind", "tracked") == []
    assert listed(home, "--since", "1h") == [c, b, a]
    assert listed(home, "--until", "2001-01-01") == []
    assert listed(home, "--status", "queued", "--status", "failed") == [c, b, a]
    text = ok(home, "ls", "--name", "nightly-a")
    assert "nightly-a" in text and "nightly-b" not in text


def test_pages_with_cursors(home: Path, made: list[int]) -> None:
    first = ok(home, "ls", "--json", "--limit", "2")
    assert [t["id"] for t in first["items"]] == made[:0:-1]
    rest = ok(home, "ls", "--json", "--limit", "2", "--cursor", first["next_cursor"])
    assert [t["id"] for t in rest["items"]] == made[:1] and rest["next_cursor"] is None
    done = cli(home, "ls", "--limit", "1")
    assert done.returncode == 0
    assert b"--cursor " in done.stderr and done.stderr.count(b"\n") == 1


def test_counts(home: Path, made: list[int]) -> None:
    counts = ok(home, "ls", "--counts", "--json")
    assert counts["counts"]["queued"] == 3 and counts["total"] == 3
    assert ok(home, "ls", "--counts", "--json", "--name", "nightly-*")["total"] == 2
    only = ok(home, "ls", "--counts", "--json", "--status", "failed")
    assert only == {"counts": {"failed": 0}, "total": 0, "partial": False}
    text = ok(home, "ls", "--counts")
    assert "queued" in text and "total" in text


def test_a_terminal_gets_a_page_of_50(home: Path) -> None:
    with Yard(home) as y:
        for _ in range(55):
            y.submit(["true"])
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(home), "ls"],
                              stdout=follower, stderr=subprocess.PIPE, timeout=60,
                              env=dict(os.environ, COLUMNS="120"))
        os.close(follower)
        follower = -1
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed, all read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in out.decode().splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 50 and b"--cursor" in proc.stderr
    assert len(listed(home)) == 55  # not a terminal: all of them


@pytest.mark.parametrize("args", [
    ["--cursor", "nope"], ["--meta", "novalue"], ["--meta", "a=null"], ["--meta", "a..b=1"],
    ["--since", "yesterday"], ["--until", "2026-13-01"], ["--kind", "script"],
    ["--status", "done"], ["--limit", "-1"], ["--name", "x" * 1001], ["--text", "ab"],
])
def test_bad_input_is_one_line_exit_2(home: Path, args: list[str]) -> None:
    done = cli(home, "ls", *args)
    err = done.stderr.decode()
    assert done.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("taskyard") and "Traceback" not in err


EMPTY = [("queue", "queue"), ("tenant", "tenant"), ("name", "name"), ("text", "text"),
         ("since", "since"), ("until", "until")]


@pytest.mark.parametrize(("flag", "field"), EMPTY)
def test_an_empty_filter_is_an_error_naming_it(home: Path, made: list[int], flag: str,
                                               field: str) -> None:
    """An empty filter would match every task (``--name "$UNSET"``): it is bad input,
    the same from the CLI and the Python API (the HTTP API: test_http_query.py)."""
    done = cli(home, "ls", f"--{flag}", "")
    err = done.stderr.decode()
    assert done.returncode == 2 and err.count("\n") == 1, err
    assert f"{field} is empty" in err
    with Yard(home) as y, pytest.raises(InvalidInput, match="is empty") as caught:
        y.list(**{flag: ""})
    assert caught.value.field == field


def test_an_empty_meta_filter(home: Path, made: list[int]) -> None:
    """No key is an error; an empty value matches tasks whose value is an empty string."""
    assert cli(home, "ls", "--meta", "").returncode == 2
    assert cli(home, "ls", "--meta", "=x").returncode == 2
    with Yard(home) as y:
        blank = y.submit(["true"], meta={"who": ""}).id
        with pytest.raises(InvalidInput) as caught:
            y.list(meta={"": "x"})
        assert caught.value.field == "meta."
        assert [t.id for t in y.list(meta={"who": ""})] == [blank]
    assert listed(home, "--meta", "who=") == [blank]


def test_yard_list_filters_and_pages(home: Path, made: list[int]) -> None:
    a, b, c = made
    with Yard(home) as y:
        assert [t.id for t in y.list()] == [c, b, a]
        assert [t.id for t in y.list(meta={"run.n": 1})] == [a]
        assert [t.id for t in y.list(meta=["run.n=1"], name="nightly-?")] == [a]
        page = y.list(limit=2)
        assert [t.id for t in page] == [c, b] and page.next_cursor is not None
        rest = y.list(limit=2, cursor=page.next_cursor)
        assert [t.id for t in rest] == [a] and rest.next_cursor is None
        assert y.list(kind="function") == [] and y.list(status="running") == []


def test_task_data_is_never_markup_in_the_table(home: Path) -> None:
    with Yard(home) as y:
        y.submit(["echo", "[red]hi"], name="[/x] [bold]b")
    text = ok(home, "ls")
    assert "[/x] [bold]b" in text and "[red]hi" in text
