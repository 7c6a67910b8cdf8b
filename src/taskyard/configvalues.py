"""The readers of single settings' values (paths, names, hooks, URLs, durations): each
turns what a layer (the TOML file, an environment variable, a flag) gave into the
value :class:`~taskyard.config.Settings` holds, or raises :class:`ConfigError` naming
the setting and where it came from. :mod:`taskyard.config` dispatches to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError


def read_status_dir(value: Any, source: str) -> str:
    text = str(value)
    if not text:
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):  # a newline would split a path
        raise ConfigError(f"{source}: status_dir must be a directory path without control"
                          f" characters, not {text!r}", field="status_dir")
    return str(Path(text).expanduser().absolute())


def read_log_file(value: Any, source: str) -> str:
    text = str(value)
    if text in ("", "-"):
        return text
    if "\0" in text or text.endswith("/"):
        raise ConfigError(f"{source}: log_file must be a file path or - (standard error)",
                          field="log_file")
    return str(Path(text).expanduser().absolute())


def read_env_name(value: Any, source: str) -> str:
    text = str(value)
    if text and not (text.isascii() and text.replace("_", "a").isalnum()
                     and not text[0].isdigit()):
        raise ConfigError(f"{source}: status_file_env must be an environment variable name",
                          field="status_file_env")
    if text.startswith("TASKYARD_") or text in ("PATH", "HOME", "USER", "LOGNAME", "SHELL",
                                                 "PWD", "LD_PRELOAD", "LD_LIBRARY_PATH"):
        raise ConfigError(f"{source}: status_file_env {text} would hide a variable tasks"
                          " need: give a name of its own (MGR_LT_PID)",
                          field="status_file_env")
    return text


def read_hook_argv(value: Any, source: str) -> tuple[str, ...]:
    """An argv list (TOML), or its JSON (the environment, a flag)."""
    from .errors import InvalidInput
    from .validate import check_hook, parse_hook

    if isinstance(value, str) and not value.strip():
        return ()
    try:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return parse_hook(value, "on_finish")
        if isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value):
            return check_hook(value, "on_finish")
    except InvalidInput as exc:  # a list, but not a runnable argv (an empty program...)
        raise ConfigError(f"{source}: {exc}", field="on_finish") from None
    raise ConfigError(f"{source}: on_finish must be a list of strings, the hook's argv"
                      f' (on_finish = ["notify-send", "task done"]; in TASKYARD_ON_FINISH'
                      f" that list as JSON), not {value!r}", field="on_finish")


def read_hook_url(value: Any, source: str) -> str:
    from .errors import InvalidInput
    from .validate import check_hook_url

    try:
        return check_hook_url(str(value), "on_finish_url")
    except InvalidInput as exc:
        raise ConfigError(f"{source}: {exc}", field="on_finish_url") from None


def read_age(value: Any, source: str) -> float:
    """``30d``, ``12h``, a number of seconds; 0 or "" for none."""
    from .errors import InvalidInput
    from .validate import parse_duration

    if isinstance(value, bool):
        raise ConfigError(f"{source}: retain must be a duration like 30d", field="retain")
    if isinstance(value, (int, float)):
        text = str(value)
    else:
        text = str(value).strip() or "0"
    try:
        return parse_duration(text, "retain")
    except InvalidInput as exc:
        raise ConfigError(f"{source}: {exc}", field="retain") from None


def read_cwd(value: Any, source: str) -> str:
    text = str(value)
    if not text:
        return ""
    path = Path(text).expanduser().absolute() if "\0" not in text else None
    if path is None or not path.is_dir():
        raise ConfigError(f"{source}: cwd must be an existing directory, not {text!r}",
                          field="cwd")
    return str(path)


def read_run_as(value: Any, source: str) -> str:
    text = str(value)
    if text and (len(text) > 64 or text.startswith("-")
                 or not all(c.isascii() and (c.isalnum() or c in "._-") for c in text)):
        raise ConfigError(f"{source}: run_as: {text!r} is not a valid user name",
                          field="run_as")
    return text


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}


def read_debug(value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    found = _BOOLEANS.get(str(value).strip().lower())
    if found is None:
        raise ConfigError(f"{source}: debug must be true or false, got {value!r}",
                          field="debug")
    return found


def read_public_url(value: Any, source: str) -> str:
    text = str(value).rstrip("/")
    if text and not text.startswith(("http://", "https://")):
        raise ConfigError(f"{source}: public_url must start with http:// or https://",
                          field="public_url")
    return text


def read_store(value: Any, source: str) -> str:
    """A postgresql:// URL as given, or a SQLite path made absolute."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(f"{source}: store must be a file path or a postgresql:// URL",
                          field="store")
    if value.startswith(("postgresql://", "postgres://")) or value == ":memory:":
        return value  # ":memory:": a store in this process's memory (tests; Yard.memory())
    if "dbname=" in value or "host=" in value:
        raise ConfigError(f"{source}: store: give PostgreSQL as a postgresql:// URL"
                          " (postgresql://user@host:5432/db), not key=value", field="store")
    if "://" in value:
        raise ConfigError(f"{source}: unknown store URL scheme in {value.split('://')[0]!r}"
                          " (use a file path or postgresql://)", field="store")
    return str(Path(value).expanduser().absolute())


def read_imports(value: Any, source: str) -> str:
    """Module names, from a TOML list or a comma-separated string."""
    names = value if isinstance(value, list) else str(value).split(",")
    cleaned = [str(n).strip() for n in names if str(n).strip()]
    for name in cleaned:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(f"{source}: imports: {name!r} is not a module name",
                              field="imports")
    return ",".join(cleaned)


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8470`` for IPv6) to (host, port)."""
    host, sep, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(listen)
    return host, int(port)


def check_listen(value: str, source: str) -> str:
    if value == "":
        return value  # the panel is off
    try:
        split_listen(value)
    except ValueError:
        raise ConfigError(f"{source}: listen must be HOST:PORT (e.g. 127.0.0.1:8470), not"
                          f" {value!r}", field="listen") from None
    return value


def read_root_path(value: Any, source: str) -> str:
    text = str(value).rstrip("/")
    if text and (not text.startswith("/") or not text.isprintable() or " " in text
                 or any(c in text for c in "?#\"\'<>")):
        raise ConfigError(f"{source}: root_path must be a URL path like /taskyard, not"
                          f" {value!r}", field="root_path")
    return text
