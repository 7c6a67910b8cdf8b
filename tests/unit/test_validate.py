from __future__ import annotations

import json
import signal

import pytest

from taskyard import validate
from taskyard.errors import InvalidInput
from taskyard.model import TaskSpec
from taskyard.store.jsonpatch import merge_patch


@pytest.mark.parametrize("argv", [[], [""], ["echo", "a\0b"]])
def test_bad_argv(argv: list[str]) -> None:
    with pytest.raises(InvalidInput):
        validate.check_argv(argv)


@pytest.mark.parametrize("env", [{"A=B": "x"}, {"": "x"}, {"A": "x\0y"}, {"A\0": "x"}])
def test_bad_env(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="env"):
        validate.check_env(env)


def test_env_pairs() -> None:
    assert validate.parse_env_pairs(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(InvalidInput, match="KEY=VALUE"):
        validate.parse_env_pairs(["NOEQUALS"])
    with pytest.raises(InvalidInput):
        validate.parse_env_pairs(["=x"])


@pytest.mark.parametrize(("text", "match"), [
    ("[1, 2]", "must be a JSON object"),
    ("not json", "not valid JSON"),
    ('{"a": NaN}', "NaN"),
    ('{"a": Infinity}', "Infinity"),
    ('{"a": 123456789012345678901234567890}', "64 bits"),
    ('{"a":' * 100 + "1" + "}" * 100, "deeper"),
    ("[" * 100_000 + "]" * 100_000, "JSON"),
])
def test_bad_meta(text: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        validate.parse_json_object(text)


def test_meta_size_cap() -> None:
    big = json.dumps({"a": "x" * (1024 * 1024)})
    with pytest.raises(InvalidInput, match="over"):
        validate.parse_json_object(big)
    assert validate.parse_json_object('{"a": [1, 2.5, "x", null, true]}') == {
        "a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize(("text", "number"), [
    ("TERM", signal.SIGTERM), ("sigkill", signal.SIGKILL), ("9", 9), ("SIGUSR1", signal.SIGUSR1),
    ("hup", signal.SIGHUP), ("64", 64)])
def test_signals(text: str, number: int) -> None:
    assert validate.parse_signal(text) == number


@pytest.mark.parametrize("text", ["SIGFOO", "0", "65", "-1", "١٥", "", "TERM9"])
def test_bad_signals(text: str) -> None:
    with pytest.raises(InvalidInput, match="signal"):
        validate.parse_signal(text)


@pytest.mark.parametrize(("done", "total"), [(-1, 10), (float("nan"), None), (1, float("inf")),
                                             (11, 10), (1, 0)])
def test_bad_progress(done: float, total: float | None) -> None:
    with pytest.raises(InvalidInput, match="progress"):
        validate.check_progress(done, total)


def test_progress_done_over_total_names_done() -> None:
    with pytest.raises(InvalidInput, match=r"done \(12\) is over its total \(10\)") as caught:
        validate.check_progress(12, 10)
    assert caught.value.field == "done"
    validate.check_progress(10, 10)  # all done
    validate.check_progress(12, None)  # no total: any count


def test_spec_checks() -> None:
    with pytest.raises(InvalidInput, match="absolute"):
        validate.check_spec(TaskSpec(argv=("x",), cwd="relative"))
    with pytest.raises(InvalidInput, match="exclude"):
        validate.check_spec(TaskSpec(argv=("x",), stdin=b"a", stdin_open=True))
    with pytest.raises(InvalidInput, match="name"):
        validate.check_spec(TaskSpec(argv=("x",), name="line\nbreak"))
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInput, match="timeout"):
            validate.check_spec(TaskSpec(argv=("x",), timeout=bad))


def test_merge_patch_rfc7396() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": [1]}) == {
        "a": 1, "b": {"d": 3, "e": 4}, "f": [1]}
    assert merge_patch({"a": 1}, {"a": None}) == {}


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
    ("0.5s", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert validate.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "m", "١٠m", "1e999h", "9" * 40])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInput):
        validate.parse_duration(text)


def test_times() -> None:
    assert validate.parse_time("2026-11-23T10:00:00Z") == 1795428000.0
    assert validate.parse_time("2026-11-23T11:00:00+01:00") == 1795428000.0
    for bad in ("tomorrow", "2026-13-01", "٢٠٢٦-11-23", "x" * 100):
        with pytest.raises(InvalidInput):
            validate.parse_time(bad)


def test_retry_policy() -> None:
    from taskyard import retry
    from taskyard.lifecycle import Reason

    assert retry.parse_on("exit, crashed,exit") == (Reason.EXIT, Reason.CRASHED)
    for bad in ("killed", "nope", ""):
        with pytest.raises(InvalidInput, match="retry-on"):
            retry.parse_on(bad)
    assert retry.next_delay(0, 2.0, "fixed", rand=0.5) == 2.0
    assert retry.next_delay(3, 2.0, "exponential", rand=0.5) == 16.0
    assert 1.6 <= retry.next_delay(0, 2.0, "fixed") <= 2.4
    assert retry.next_delay(500, 2.0, "exponential", rand=1.0) == retry.MAX_DELAY
    with pytest.raises(InvalidInput):
        validate.check_spec(TaskSpec(argv=("x",), retries=-1))
    with pytest.raises(InvalidInput):
        validate.check_spec(TaskSpec(argv=("x",), backoff="linear"))


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+01:00"])
def test_start_times_iso_8601_cannot_show_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="time"):
        validate.parse_time(text)


def test_text_that_is_not_unicode_is_refused_everywhere_it_would_be_stored() -> None:
    lone = "\udcff"  # a byte that is not UTF-8, as Python decodes argv
    for spec in (TaskSpec(argv=("echo", lone)), TaskSpec(argv=("x",), env={"A": lone}),
                 TaskSpec(argv=("x",), name=lone), TaskSpec(argv=("x",), meta={"k": lone}),
                 TaskSpec(argv=("x",), meta={lone: 1}), TaskSpec(argv=("x",), cwd="/tmp/" + lone)):
        with pytest.raises(InvalidInput, match="UTF-8"):
            validate.check_spec(spec)
    with pytest.raises(InvalidInput, match="UTF-8"):
        validate.check_progress(1, 2, "half " + lone)
    with pytest.raises(InvalidInput, match="4096"):
        validate.check_progress(1, 2, "x" * 5000)


@pytest.mark.parametrize("name", ["..", ".", "a\nb", "a\0b", ""])
def test_a_queue_name_is_not_dot_dotdot_or_control_characters(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate.check_queue(name)
    assert caught.value.field == "queue"


def test_a_queue_folder_never_leads_out_of_its_status_directory() -> None:
    from taskyard.statuspath import folder_name

    assert validate.check_queue("team/a") == "team/a"  # a fine name, not a path
    assert [folder_name(q) for q in ("imports", "../evil", "team/a", "..", ".", "a.b")] == [
        "imports", "..%2Fevil", "team%2Fa", "%2E%2E", "%2E", "a.b"]
