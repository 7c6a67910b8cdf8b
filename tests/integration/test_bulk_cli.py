"""taskyard submit --from-file: every line checked before any task is written."""

from __future__ import annotations

import json
from pathlib import Path

from taskyard import Yard
from taskyard.testing import cli


def test_from_file_writes_all_or_names_the_bad_line(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"argv": ["echo", str(n)], "meta": {"n": n}}) + "\n"
                            for n in range(50)) + "\n" + json.dumps(
        {"function": "add", "kwargs": {"a": 1}, "queue": "q", "output_tail": "0"}) + "\n")
    out = cli(home, "submit", "--from-file", str(good), "--chunk", "7")
    assert out.returncode == 0, out.stderr
    ids = [int(line) for line in out.stdout.split()]
    assert len(ids) == 51 and ids == sorted(ids)
    with Yard(home) as y:
        assert y.get(ids[3]).meta == {"n": 3} and y.get(ids[3]).cwd is not None
        assert (y.get(ids[-1]).function, y.get(ids[-1]).output_tail) == ("add", 0)
    for line, want in (('{"argv": ["true"], "queu": "x"}', "line 3: queu:"),
                       ('{"argv": ["true"], "priority": "high"}', "line 3: priority:"),
                       ('{"argv": ["true"]', "line 3: not JSON"),
                       ('{"argv": ["true"], "tenant": "nobody"}', "bad.jsonl: line 3: no tenant"),
                       ('{"argv": ["true"], "after": [99999]}', "bad.jsonl: line 3: after:")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"argv": ["true"]}\n{"argv": ["true"]}\n' + line + "\n")
        out = cli(home, "submit", "--from-file", str(bad))
        err = out.stderr.decode()
        assert out.returncode == 2 and err.count("\n") == 1 and want in err, err
    with Yard(home) as y:
        assert len(y.list()) == 51
    assert cli(home, "submit", "--from-file", "/no/such", "--", "x").returncode == 2


def test_from_file_refuses_task_options_it_would_ignore(home: Path, tmp_path: Path) -> None:
    """`submit --from-file F --queue img` used to put every task in `default`: the
    options of one task are the file's to give, so a flag beside --from-file is exit 2
    naming it, and nothing is written."""
    specs = tmp_path / "tasks.jsonl"
    specs.write_text('{"argv": ["true"]}\n')
    for flag in (["--queue", "img"], ["--name", "x"], ["--tenant", "t"], ["--priority", "5"],
                 ["--meta", "{}"], ["--env", "A=1"], ["--timeout", "5"], ["--keep"],
                 ["--retries", "2"], ["--in", "1h"], ["--output-tail", "0"]):
        out = cli(home, "submit", "--from-file", str(specs), *flag)
        err = out.stderr.decode()
        assert out.returncode == 2 and err.count("\n") == 1 and flag[0] in err, (flag, err)
    with Yard(home) as y:
        assert len(y.list()) == 0
    assert cli(home, "submit", "--from-file", str(specs), "--chunk", "5", "--json").returncode == 0
