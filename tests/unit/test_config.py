from __future__ import annotations

from pathlib import Path

import pytest

from taskyard import config
from taskyard.errors import ConfigError


def test_layers_defaults_file_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.load(tmp_path).kill_grace == 5.0
    (tmp_path / "taskyard.toml").write_text("[server]\nslots = 3\nkill_grace = 7\n")
    s = config.load(tmp_path)
    assert (s.slots, s.kill_grace) == (3, 7.0)
    monkeypatch.setenv("TASKYARD_SLOTS", "5")
    assert config.load(tmp_path).slots == 5
    assert config.load(tmp_path, slots=9).slots == 9
    assert config.load(tmp_path, slots=None).slots == 5


def test_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.default_home() == tmp_path / "xdg" / "taskyard"
    monkeypatch.setenv("TASKYARD_HOME", str(tmp_path / "h"))
    assert config.default_home() == tmp_path / "h"
    assert config.load("rel").home.is_absolute()


@pytest.mark.parametrize(("toml", "match"), [
    ("[server]\nslots = 'many'\n", "slots"),
    ("[server]\nbogus = 1\n", "unknown setting"),
    ("[server]\nsynchronous = 'sometimes'\n", "synchronous"),
    ("[server\n", "taskyard.toml"),
    ("[server]\nkill_grace = -1\n", "kill_grace"),
    ("[server]\nkill_grace = inf\n", "kill_grace must be from 0 to 3,600"),
    ("[server]\npoll_interval = 0\n", "poll_interval must be from 0.01"),  # a busy loop
    ("[server]\nheartbeat_interval = 0\n", "heartbeat_interval"),
    ("[server]\nflush_interval = nan\n", "flush_interval"),
    ("[server]\noutput_tail_mib = 1e308\n", "output_tail_mib"),
    ("[server]\nslots = 1e9\n", "slots must be from 0 to 4,096"),
    ("[server]\nslots = 2.5\n", "slots must be an integer"),
])
def test_bad_settings(tmp_path: Path, toml: str, match: str) -> None:
    (tmp_path / "taskyard.toml").write_text(toml)
    with pytest.raises(ConfigError, match=match):
        config.load(tmp_path)


def test_bad_env_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKYARD_POLL_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="TASKYARD_POLL_INTERVAL"):
        config.load(tmp_path)


def test_an_empty_home_or_a_file_as_home_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must not be empty"):
        config.load("")
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        config.load(tmp_path / "afile")


def test_debug_is_log_level_debug_in_the_layer_that_says_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "taskyard.toml").write_text("[server]\ndebug = true\n")
    s = config.load(tmp_path)
    assert (s.log_level, s.debug) == ("debug", True)
    s = config.load(tmp_path, log_level="warning")  # a later layer wins, as for any setting
    assert (s.log_level, s.debug) == ("warning", False)
    (tmp_path / "taskyard.toml").write_text("[server]\nlog_level = \"error\"\n")
    monkeypatch.setenv("TASKYARD_DEBUG", "1")
    assert config.load(tmp_path).log_level == "debug"
    monkeypatch.setenv("TASKYARD_DEBUG", "0")
    assert config.load(tmp_path).log_level == "error"
    assert config.load(tmp_path, debug=True).log_level == "debug"
    monkeypatch.setenv("TASKYARD_DEBUG", "maybe")
    with pytest.raises(ConfigError, match="TASKYARD_DEBUG: debug must be true or false") as err:
        config.load(tmp_path)
    assert err.value.field == "debug"


def test_cwd_must_be_an_existing_directory(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(tmp_path)
    assert config.load(tmp_path, cwd="work").cwd == str(work)  # made absolute
    assert config.load(tmp_path).cwd == ""
    for bad in ("missing", "taskyard.toml", "a\0b"):
        (tmp_path / "taskyard.toml").write_text("")
        with pytest.raises(ConfigError, match="cwd must be an existing directory") as err:
            config.load(tmp_path, cwd=bad)
        assert err.value.field == "cwd"
    (tmp_path / "taskyard.toml").write_text(f"[server]\ncwd = \"{tmp_path / 'nope'}\"\n")
    with pytest.raises(ConfigError, match="taskyard.toml: cwd must be an existing directory"):
        config.load(tmp_path)


def test_run_as_is_a_user_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKYARD_RUN_AS", "nobody")
    assert config.load(tmp_path).run_as == "nobody"
    for bad in ("-root", "a b", "x" * 65, "ünï"):
        with pytest.raises(ConfigError, match="run_as: .* is not a valid user name") as err:
            config.load(tmp_path, run_as=bad)
        assert err.value.field == "run_as"


@pytest.mark.parametrize("name", ["TASKYARD_TASK_ID", "PATH", "HOME"])
def test_a_status_file_env_that_would_hide_a_needed_variable_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("TASKYARD_STATUS_FILE_ENV", name)
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    assert caught.value.field == "status_file_env"


@pytest.mark.parametrize("value", ['"notalist"', "5", '["notify", 3]', "{ a = 1 }"])
def test_an_on_finish_that_is_not_an_argv_says_it_must_be_a_list_of_strings(
        tmp_path: Path, value: str) -> None:
    (tmp_path / "taskyard.toml").write_text(f"[server]\non_finish = {value}\n")
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    said = str(caught.value)
    assert said.startswith(f"{tmp_path / 'taskyard.toml'}: on_finish must be a list of strings")
    assert "argv" in said and caught.value.field == "on_finish"
    assert "\n" not in said


def test_an_on_finish_argv_from_the_file_or_as_json_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "taskyard.toml").write_text('[server]\non_finish = ["notify", "--all"]\n')
    assert config.load(tmp_path).on_finish == ("notify", "--all")
    monkeypatch.setenv("TASKYARD_ON_FINISH", '["mail", "ops"]')
    assert config.load(tmp_path).on_finish == ("mail", "ops")
    monkeypatch.setenv("TASKYARD_ON_FINISH", "mail ops")
    with pytest.raises(ConfigError, match="^TASKYARD_ON_FINISH: on_finish must be a list"):
        config.load(tmp_path)


@pytest.mark.parametrize("bad", ["/tmp/a\nb", "/tmp/a\rb", "/tmp/a\x1bb", "/tmp/a\x00b"])
def test_a_status_dir_with_a_control_character_is_refused(
        tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path, status_dir=bad)
    assert caught.value.field == "status_dir" and "control character" in str(caught.value)
