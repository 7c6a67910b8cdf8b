"""--fd N=...: a task reads the data it was given on a descriptor past 2 (LongTask
programs read their parameters on the third descriptor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskyard import Status, Yard
from taskyard.errors import UserError
from taskyard.testing import cli, running_server


def test_a_task_reads_its_data_on_the_descriptors_it_was_given(home: Path,
                                                               tmp_path: Path) -> None:
    params = tmp_path / "params"
    params.write_bytes(b"name=report\nmonth=11\n\xff")
    with running_server(home, "--slots", "2"), Yard(home) as y:
        out = cli(home, "submit", "--fd", f"3=@{params}", "--fd", "7=seven", "--json", "--",
                  "sh", "-c", "cat <&3; echo; cat <&7; echo; ls /proc/$$/fd | tr '\\n' ' '")
        assert out.returncode == 0, out.stderr
        task = json.loads(out.stdout)
        assert task["fds"] == [3, 7]
        done = y.wait(task["id"], timeout=30)
        assert done is not None and done.status is Status.SUCCEEDED, done
        data = y.logs(task["id"]).data
        assert data.startswith(b"name=report\nmonth=11\n\xff\nseven\n")
        listed = set(data.rsplit(b"\n", 1)[1].split())  # the shell's own descriptors
        # 4: the messages pipe, the lowest number the task's --fd left free
        assert {b"3", b"4", b"7"} <= listed and not {b"5", b"6"} & listed, listed
        shown = json.loads(cli(home, "show", str(task["id"]), "--json").stdout)
        assert shown["fds"] == [3, 7]
        big = y.submit(["sh", "-c", "wc -c <&3"], fds={3: b"x" * 3_000_000})
        assert y.wait(big.id, timeout=30) is not None
        assert y.logs(big.id).data.strip() == b"3000000"


@pytest.mark.parametrize("given", ["2=x", "256=x", "x=1", "3", "3=@/no/such/file"])
def test_bad_descriptors_are_one_line_and_exit_2(home: Path, given: str) -> None:
    out = cli(home, "submit", "--fd", given, "--", "true")
    assert out.returncode == 2 and out.stderr.count(b"\n") == 1, out.stderr
    assert json.loads(cli(home, "ls", "--json").stdout)["items"] == [], "nothing was submitted"


def test_the_python_api_checks_descriptors(home: Path) -> None:
    with Yard(home) as y:
        for bad in ({1: b"x"}, {3: "text"}, {"3": b"x"}, [3]):
            with pytest.raises(UserError) as caught:
                y.submit(["true"], fds=bad)  # type: ignore[arg-type]
            assert caught.value.field == "fds"
        with pytest.raises(UserError):
            y.submit(["true"], fds={3: b"x" * (64 * 1024 * 1024 + 1)})
        assert y.list() == []
