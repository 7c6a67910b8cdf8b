"""Validation of everything a user hands in. Raises :class:`InvalidInput` and changes nothing."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidInput
from .jsoncheck import INT64 as INT64
from .jsoncheck import MAX_JSON_DEPTH as MAX_JSON_DEPTH
from .jsoncheck import MAX_META_BYTES as MAX_META_BYTES
from .jsoncheck import check_json as check_json
from .jsoncheck import check_meta as check_meta
from .jsoncheck import check_unicode as check_unicode
from .jsoncheck import parse_json_object as parse_json_object
from .jsoncheck import parse_json_value as parse_json_value
from .model import TaskSpec
from .textparse import MAX_TIME as MAX_TIME
from .textparse import MIN_TIME as MIN_TIME
from .textparse import check_time as check_time
from .textparse import parse_duration as parse_duration
from .textparse import parse_ids as parse_ids
from .textparse import parse_signal as parse_signal
from .textparse import parse_time as parse_time

MAX_STDIN_BYTES = 64 * 1024 * 1024
MAX_NAME = 200
_CONTROL = re.compile("[\x00-\x1f\x7f]")  #: what a name may not hold
INT32 = 2**31


def _no_nul(value: str, what: str) -> None:
    """Text taskyard stores: no NUL, and valid Unicode (a command line's bytes that are
    not UTF-8 arrive as lone surrogates, which no store can hold as text)."""
    if "\0" in value:
        raise InvalidInput(f"{what} contains a NUL character", field=what.split()[0])
    check_unicode(value, what)


def check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    if not argv:
        raise InvalidInput("a command is required (put it after --)", field="argv")
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):
            raise InvalidInput(f"argv[{i}] must be a string", field="argv")
        _no_nul(arg, f"argv[{i}]")
    if argv[0] == "":
        raise InvalidInput("the program name (argv[0]) is empty", field="argv")
    return tuple(argv)


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput("env keys and values must be strings", field="env")
        if key == "":
            raise InvalidInput("env key is empty", field="env")
        if "=" in key:
            raise InvalidInput(f"env key {key!r} contains '='", field="env")
        _no_nul(key, "env key")
        _no_nul(value, f"env value of {key}")
    return dict(env)


def parse_env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``K=V`` strings (from ``--env``) to a dict."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--env {pair!r}: expected KEY=VALUE", field="env")
        out[key] = value
    return check_env(out)


def check_name(name: str | None, what: str = "name") -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidInput(f"{what} must be a string", field=what)
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise InvalidInput(f"{what} must be 1-{MAX_NAME} printable characters", field=what)
    return check_unicode(name, what)


def required_name(name: str | None, what: str = "name") -> str:
    """A name that must be given (check_name lets None through: "no name")."""
    checked = check_name(name, what)
    if checked is None:
        raise InvalidInput(f"{what} must be given", field=what)
    return checked


def check_queue(name: str | None) -> str:
    """A queue name a task or queue setting is written under: a name (no control
    characters), not ``.`` or ``..`` (a queue's status files go to DIR/<queue>/; a
    ``/`` in a name is written ``%2F`` there, see statuspath.folder_name)."""
    checked = required_name(name, "queue")
    if checked in (".", ".."):
        raise InvalidInput(f"queue {checked!r}: . and .. are not queue names",
                           field="queue")
    return checked


def check_path(path: str, what: str) -> str:
    """A file system path taskyard writes under: no control characters (a newline
    would split it in every line-based listing) and valid Unicode."""
    if _CONTROL.search(path):
        raise InvalidInput(f"{what} must be a path without control characters, not"
                           f" {path!r}", field=what)
    return check_unicode(path, what)


def check_parallel(parallel: int | None) -> int | None:
    """A parallel limit: an integer >= 1, or None for no limit."""
    if parallel is not None and (isinstance(parallel, bool) or not isinstance(parallel, int)
                                 or not 1 <= parallel < INT32):
        raise InvalidInput("parallel must be an integer >= 1 (or unlimited)", field="parallel")
    return parallel


def check_user(user: str | None) -> str | None:
    """A login name to run a tenant's tasks as (it must exist on the servers' hosts)."""
    if user is None:
        return None
    if not user or len(user) > 64 or not all(c.isascii() and (c.isalnum() or c in "._-")
                                              for c in user) or user.startswith("-"):
        raise InvalidInput(f"run-as: {user!r} is not a valid user name", field="run_as")
    return user


def task_id(value: object) -> int:
    """A task id handed to the API: an int (not a bool, not "1", not 1.0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"a task id is an integer, not {type(value).__name__}", field="id")
    if not 1 <= value < INT64:
        raise InvalidInput(f"task id {value} is out of range (1 to 2^63-1)", field="id")
    return value


def whole(value: object, what: str, low: int = 0, high: int = INT64 - 1) -> int:
    """An integer argument within [low, high] (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{what} must be an integer from {low} to {high}", field=what)
    return value


def real(value: object, what: str, low: float = 0.0, high: float = 1e12,
         above_low: bool = False) -> float:
    """A finite number argument within its range (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a number, not {type(value).__name__}", field=what)
    number = float(value) if isinstance(value, float) or abs(value) < 2**53 else math.inf
    if not (math.isfinite(number) and (number > low if above_low else number >= low)
            and number <= high):
        raise InvalidInput(f"{what} must be a number {'>' if above_low else '>='} {low:g}"
                           f" and at most {high:g}", field=what)
    return number


def timeout_arg(value: object, what: str = "timeout") -> float | None:
    """A wait's timeout: None (no limit) or seconds >= 0."""
    return None if value is None else real(value, what)


def sequence(value: object, what: str, of: str) -> tuple[object, ...]:
    """A list (or tuple...) argument's items; a lone string is not one (it would be split
    into letters), nor a mapping or a number."""
    if not isinstance(value, str | bytes | bytearray | Mapping):
        try:
            return tuple(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise InvalidInput(f"{what} must be a list of {of}", field=what)


def strings(value: object, what: str) -> tuple[str, ...]:
    """A list of strings."""
    items = sequence(value, what, "strings")
    checked = tuple(item for item in items if isinstance(item, str))
    if len(checked) != len(items):
        raise InvalidInput(f"{what} must be a list of strings", field=what)
    return checked


def mapping(value: object, what: str, *, none_is_empty: bool = True) -> dict[Any, Any]:
    """A dict argument (None: empty, unless it must be given)."""
    if value is None and none_is_empty:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be a mapping (a dict), not {type(value).__name__}",
                           field=what)
    return dict(value)


def _check_types(spec: TaskSpec) -> None:
    """Types the API could hand in wrong (the CLI cannot): checked before anything else."""
    if spec.cwd is not None and not isinstance(spec.cwd, str):
        raise InvalidInput("cwd must be a string", field="cwd")
    if spec.stdin is not None and not isinstance(spec.stdin, bytes):
        raise InvalidInput("stdin must be bytes", field="stdin")
    if not isinstance(spec.stdin_open, bool):
        raise InvalidInput("stdin_open must be True or False", field="stdin_open")
    whole(spec.priority, "priority", -INT32, INT32 - 1)
    whole(spec.retries, "retries")
    real(spec.retry_delay, "retry_delay")
    if spec.timeout is not None:
        real(spec.timeout, "timeout", above_low=True)
    if spec.run_at is not None:
        check_time(real(spec.run_at, "at", -math.inf, math.inf))
    strings(spec.retry_on, "retry_on")
    if not isinstance(spec.backoff, str):
        raise InvalidInput("backoff must be a string", field="backoff")
    for what, value in (("env", spec.env), ("meta", spec.meta)):
        if not isinstance(value, dict):
            raise InvalidInput(f"{what} must be a mapping (a dict)", field=what)


def _check_what(spec: TaskSpec) -> None:
    """A command (argv) or a function with JSON kwargs, not both."""
    if spec.function is None:
        check_argv(spec.argv)
        if spec.kwargs is not None:
            raise InvalidInput("kwargs go with --function", field="kwargs")
        return
    check_name(spec.function, "function")
    if spec.argv:
        raise InvalidInput("a function task takes kwargs, not a command", field="argv")
    if not isinstance(spec.kwargs, dict):
        raise InvalidInput("kwargs must be a JSON object", field="kwargs")
    check_json(spec.kwargs, "kwargs")


def check_spec(spec: TaskSpec) -> TaskSpec:
    _check_types(spec)
    _check_what(spec)
    check_env(spec.env)
    check_meta(spec.meta)
    check_name(spec.name)
    check_queue(spec.queue)
    if spec.queue == "_hooks":
        raise InvalidInput("queue _hooks is the finish hooks' own", field="queue")
    check_name(spec.unique, "unique")
    check_name(spec.mutex, "mutex")
    required_name(spec.tenant, "tenant")
    if spec.cwd is not None:
        _no_nul(spec.cwd, "cwd")
        if not spec.cwd.startswith("/"):
            raise InvalidInput("cwd must be an absolute path", field="cwd")
    if any(not isinstance(a, int) or isinstance(a, bool) or a <= 0 for a in spec.after):
        raise InvalidInput("after must list task ids", field="after")
    from . import retry

    retry.check(spec.retries, spec.retry_delay, spec.backoff)
    retry.parse_on(",".join(spec.retry_on))
    if spec.timeout is not None and not (math.isfinite(spec.timeout) and spec.timeout > 0):
        raise InvalidInput("timeout must be a number of seconds > 0", field="timeout")
    if spec.stdin is not None and spec.stdin_open:
        raise InvalidInput("--stdin-file and --stdin-open exclude each other", field="stdin")
    if spec.stdin is not None and len(spec.stdin) > MAX_STDIN_BYTES:
        raise InvalidInput(f"stdin is over {MAX_STDIN_BYTES} bytes", field="stdin")
    check_fds(spec.fds)
    if spec.on_finish is not None:
        check_hook(spec.on_finish)
    if spec.limits.any:
        from .limits import check

        check(spec.limits)
    if spec.rate_limit is not None:
        from .rates import parse_rate_limit

        spec = spec._replace(rate_limit=parse_rate_limit(spec.rate_limit))
    if spec.fds and spec.function is not None:
        raise InvalidInput("--fd gives data to a command; a function takes kwargs",
                           field="fds")
    return spec


def check_hook(argv: object, what: str = "on_finish") -> tuple[str, ...]:
    """A finish hook's argv: a list of strings (``[]``: no hook at all)."""
    if not isinstance(argv, (list, tuple)) or not all(isinstance(a, str) for a in argv):
        raise InvalidInput(f"{what} must be a JSON list of strings (the hook's argv)",
                           field=what)
    if argv:
        try:
            return check_argv(argv)
        except InvalidInput as exc:
            raise InvalidInput(f"{what}: {exc}", field=what) from None
    return ()


def parse_hook(text: str, what: str = "on_finish") -> tuple[str, ...]:
    """``--on-finish-json '["notify", "--all"]'``."""
    return check_hook(parse_json_value(text, what), what)


def check_hook_url(url: str, what: str = "on_finish_url") -> str:
    """An http(s) URL a webhook is POSTed to ('' for none)."""
    from urllib.parse import urlsplit

    if url == "":
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or not url.isprintable() or " " in url):
        raise InvalidInput(f"{what} must be an http:// or https:// URL, not {url!r}",
                           field=what)
    if "@" in parts.netloc:  # never sent as credentials: the host would be user:pw@host
        raise InvalidInput(f"{what} cannot carry a user or password (USER:PASSWORD@HOST):"
                           " a receiver checks the Taskyard-Signature of on_finish_secret",
                           field=what)
    try:
        parts.port  # noqa: B018 -- raises on a port out of range or not a number
    except ValueError as exc:
        raise InvalidInput(f"{what} {url!r}: {exc}", field=what) from None
    return url


#: The descriptors --fd may give data on: past stdin, stdout and stderr, and few enough
#: that every program's select() can take them.
FD_RANGE = (3, 255)


def check_fds(fds: object) -> dict[int, bytes]:
    """Data for descriptors 3-255 (``--fd N=...``), at most MAX_STDIN_BYTES in all."""
    if not isinstance(fds, dict):
        raise InvalidInput("fds must map descriptor numbers to bytes", field="fds")
    total = 0
    for number, data in fds.items():
        if (not isinstance(number, int) or isinstance(number, bool)
                or not FD_RANGE[0] <= number <= FD_RANGE[1]):
            raise InvalidInput(f"--fd: {number!r} is not a descriptor from {FD_RANGE[0]} to"
                               f" {FD_RANGE[1]} (0-2 are stdin, stdout and stderr)", field="fds")
        if not isinstance(data, bytes):
            raise InvalidInput(f"--fd {number}: the data must be bytes", field="fds")
        total += len(data)
    if total > MAX_STDIN_BYTES:
        raise InvalidInput(f"--fd: the data is over {MAX_STDIN_BYTES} bytes in all", field="fds")
    return fds


def parse_fd(text: str) -> tuple[int, str]:
    """``N=@FILE`` or ``N=TEXT`` to (N, the rest): the caller reads a file."""
    number, sep, rest = text.partition("=")
    if not sep or not number.isascii() or not number.isdigit() or len(number) > 4:
        raise InvalidInput(f"--fd {text!r}: give N=@FILE or N=TEXT (N from {FD_RANGE[0]} to"
                           f" {FD_RANGE[1]})", field="fds")
    return int(number), rest


MAX_MESSAGE = 4096  #: characters of a progress message


def check_progress(done: float, total: float | None, message: str | None = None) -> None:
    for what, number in (("done", done), ("total", total)):
        if number is None:
            continue
        if not math.isfinite(number) or number < 0:
            raise InvalidInput(f"progress {what} must be a finite number >= 0", field=what)
    if total is not None and done > total:  # a percent over 100 is a mistake, not news
        raise InvalidInput(f"progress done ({done:g}) is over its total ({total:g})",
                           field="done")
    if message is not None:
        if not isinstance(message, str) or len(message) > MAX_MESSAGE:
            raise InvalidInput(f"a progress message is text of at most {MAX_MESSAGE} characters",
                               field="message")
        _no_nul(message, "message")
