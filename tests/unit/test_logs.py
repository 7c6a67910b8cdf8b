"""The log's formats and escaping (taskyard/logs.py), its settings, the transition line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from taskyard import config, logs
from taskyard.errors import ConfigError
from taskyard.server.translog import write_transition

EVIL = "x\n2026-01-01 INFO forged\x1b[31m\r\u2028\u202e\udc80"


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("taskyard.test", logging.INFO, __file__, 1, "%s", (message,),
                               None)
    record.__dict__.update(extra)
    return record


def test_escape_leaves_no_control_character() -> None:
    escaped = logs.escape(EVIL)
    assert escaped == "x\\n2026-01-01 INFO forged\\x1b[31m\\r\\u2028\\u202e\\udc80"
    assert escaped.isprintable()
    assert logs.escape("plain é ü 漢") == "plain é ü 漢"
    assert logs.quote('say "hi"\\ \n') == '"say \\"hi\\"\\\\ \\n"'


def test_text_lines_are_one_line_with_tracebacks_indented() -> None:
    formatter = logs.TextFormatter()
    assert "\n" not in formatter.format(_record(EVIL))
    try:
        raise ValueError(EVIL)
    except ValueError:
        record = _record("failed")
        record.exc_info = sys.exc_info()
    first, *rest = formatter.format(record).split("\n")
    assert first.endswith("INFO failed") and rest
    assert all(line.startswith("  | ") and line.isprintable() for line in rest)


def test_json_lines_parse_and_carry_the_fields() -> None:
    line = logs.JsonFormatter().format(
        _record(EVIL, event="transition", fields={"task": 3, "name": EVIL, "level": "x"}))
    assert "\n" not in line and line.isascii()
    parsed = json.loads(line)
    assert parsed["event"] == "transition" and parsed["task"] == 3
    assert parsed["name"] == EVIL and parsed["message"] == EVIL
    assert parsed["level"] == "info"  # a field cannot replace the line's own keys
    assert parsed["time"].endswith("Z")


def test_transition_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "taskyard")
    write_transition((7, 3, 0.0, "running", "failed", "server:ab12", 2, "exit", EVIL, "q 1"))
    record = caplog.records[-1]
    assert record.getMessage() == ('task 3 attempt 2: running -> failed (exit) by server:ab12'
                                   ' name="x\\n2026-01-01 INFO forged\\x1b[31m\\r\\u2028\\u202e'
                                   '\\udc80" queue="q 1"')
    assert record.fields == {  # type: ignore[attr-defined]
        "task": 3, "attempt": 2, "from": "running", "to": "failed", "reason": "exit",
        "by": "server:ab12", "name": EVIL, "queue": "q 1", "at": "1970-01-01T00:00:00.000Z"}


def test_hook_run_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "taskyard")
    logs.log_hook_run(task=5, attempt=1, hook="notify", outcome="failed", seconds=0.25,
                      exit_code=3, error="boom\n")
    record = caplog.records[-1]
    assert record.name == "taskyard.hooks" and record.levelno == logging.WARNING
    assert record.getMessage() == ('hook "notify" for task 5 attempt 1: failed (exit 3) in'
                                   ' 0.250s: "boom\\n"')
    assert record.event == "hook"  # type: ignore[attr-defined]


def test_setup_keeps_the_handlers_a_program_added(tmp_path: Path) -> None:
    root = logging.getLogger("taskyard")
    level = root.level
    mine = logging.NullHandler()
    root.addHandler(mine)
    try:
        first = logs.setup("json", "info", str(tmp_path / "a.log"))
        second = logs.setup("text", "info", str(tmp_path / "b.log"))
        assert first not in root.handlers and second in root.handlers and mine in root.handlers
        logging.getLogger("taskyard.test").info("hello %s", "there")
        second.flush()
        assert (tmp_path / "b.log").read_text().endswith("INFO hello there\n")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def test_a_batch_writes_its_lines_at_its_end_into_the_current_file(tmp_path: Path) -> None:
    root = logging.getLogger("taskyard")
    level = root.level
    path = tmp_path / "server.log"
    try:
        handler = logs.setup("text", "info", str(path))
        assert isinstance(handler, logs.LogFile)
        log = logging.getLogger("taskyard.test")
        log.info("before")
        path.rename(tmp_path / "server.log.1")  # logrotate: the next lines go to a new file
        with logs.batch():
            log.info("one")
            log.info("two")
            assert handler.held
        assert not handler.held
        lines = path.read_text().splitlines()
        assert [line.split(" INFO ")[1] for line in lines] == ["one", "two"]
        assert (tmp_path / "server.log.1").read_text().endswith("INFO before\n")
        log.info("three")  # outside a batch: written at once
        assert path.read_text().endswith("INFO three\n")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        root.setLevel(level)


def test_log_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = config.load(tmp_path)
    assert (s.log_format, s.log_file, s.log_max_mib, s.log_backups) == ("text", "", 0.0, 5)
    assert s.logfile == tmp_path / "server.log"
    (tmp_path / "taskyard.toml").write_text(
        '[server]\nlog_format = "json"\nlog_file = "x.log"\nlog_max_mib = 10\n')
    monkeypatch.chdir(tmp_path)
    s = config.load(tmp_path)
    assert (s.log_format, s.log_file, s.log_max_mib) == ("json", str(tmp_path / "x.log"), 10)
    assert s.logfile == tmp_path / "x.log"
    assert config.load(tmp_path, log_file="-").logfile == tmp_path / "server.log"


@pytest.mark.parametrize(("key", "value", "match"), [
    ("log_format", "xml", "log_format must be one of text, json"),
    ("log_file", "dir/", "log_file must be a file path or -"),
    ("log_max_mib", "-1", "log_max_mib must be from 0"),
    ("log_backups", "2.5", "log_backups must be an integer"),
])
def test_bad_log_settings(tmp_path: Path, key: str, value: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        config.load(tmp_path, **{key: value})
    assert caught.value.field == key
