"""Settings: defaults < ``taskyard.toml`` < ``TASKYARD_*`` environment < flags.

One typed :class:`Settings`; every field can come from any layer. Flags are
defined by the CLI with the environment variable shown in ``--help``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError
from .settingvalues import (
    _age,
    _cwd,
    _debug,
    _env_name,
    _hook_argv,
    _hook_url,
    _imports,
    _log_file,
    _public_url,
    _root_path,
    _run_as,
    _status_dir,
    _store,
    check_listen,
)
from .settingvalues import split_listen as split_listen

MIB = 1024 * 1024


def default_home() -> Path:
    """``$TASKYARD_HOME``, else ``$XDG_DATA_HOME/taskyard``, else ``~/.local/share/taskyard``."""
    env = os.environ.get("TASKYARD_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "taskyard"


class Settings(NamedTuple):
    home: Path
    slots: int = 0  #: parallel tasks per server; 0 means the number of cores
    poll_interval: float = 1.0  #: seconds between store polls when no hint arrives
    heartbeat_interval: float = 2.0  #: seconds between server heartbeats
    #: a server silent this long is dead: other servers record its attempts crashed
    lease: float = 10.0
    #: where the store is: a SQLite file (default: taskyard.db in the home) or a
    #: postgresql:// URL that several servers on several machines share
    store: str = ""
    imports: str = ""  #: modules (comma-separated) whose task functions the workers run
    import_path: str = ""  #: a directory put first on the workers' sys.path
    worker_max_tasks: int = 10000  #: a worker is replaced after this many tasks (0: never)
    async_concurrency: int = 1  #: async function tasks one worker runs at once
    worker_max_mib: float = 1024.0  #: ... or once its memory grew this much (0: never)
    kill_grace: float = 5.0  #: seconds between TERM and KILL
    output_head_mib: float = 1.0  #: first MiB of each stream always kept
    output_tail_mib: float = 32.0  #: last MiB of each stream kept
    max_output_tail_mib: float = 1024.0  #: the largest tail a task or queue may ask for
    flush_interval: float = 0.05  #: max seconds output waits in memory before it is stored
    #: of an attempt's messages past the first 1,000, the last this many are kept
    messages_tail: int = 10000
    synchronous: str = "normal"  #: SQLite synchronous: normal survives process crashes, full power loss
    log_level: str = "info"
    log_format: str = "text"  #: text (readable) or json (one object a line)
    #: the server's log: a file, "-" for standard error; "" for server.log in the home
    #: when daemonized, standard error in the foreground (systemd)
    log_file: str = ""
    log_max_mib: float = 0.0  #: rotate the log file past this size (0: leave it to logrotate)
    log_backups: int = 5  #: rotated files kept (server.log.1 ...)
    debug: bool = False  #: true is log_level = "debug" (read back: whether it is)
    #: the user the server drops to when started as root (its tasks run as that user)
    run_as: str = ""
    #: the directory the server changes into at start; tasks that name none run there
    cwd: str = ""
    #: a directory of status files, one a task (the LongTask convention); "" for none
    status_dir: str = ""
    #: also export a task's status file path under this name (MGR_LT_PID for LongTask)
    status_file_env: str = ""
    #: finish hooks: a command (argv) run when a task ends, and/or a URL the task's JSON
    #: is POSTed to (signed with HMAC-SHA256 under on_finish_secret); queues and tasks
    #: may set their own
    on_finish: tuple[str, ...] = ()
    on_finish_url: str = ""
    on_finish_secret: str = ""
    on_finish_timeout: float = 60.0  #: seconds a hook command may run
    #: retention: finished tasks older than this many seconds ("30d"), and beyond the
    #: newest N per queue, are pruned (0: no such limit); queues may set their own
    retain: float = 0.0
    retain_count: int = 0
    #: where the HTTP API and panel listen (HOST:PORT; "" for none), behind which prefix
    web_listen: str = "127.0.0.1:8470"
    web_root_path: str = ""
    #: the panel's address as browsers reach it (behind a proxy), for login links
    web_public_url: str = ""

    @property
    def db_path(self) -> Path:
        return self.home / "taskyard.db"

    @property
    def store_location(self) -> Path | str:
        """The SQLite file (a Path) or the PostgreSQL URL (a str) to open."""
        if not self.store:
            return self.db_path
        if self.store.startswith(("postgresql://", "postgres://")):
            return self.store
        return Path(self.store)

    @property
    def pidfile(self) -> Path:
        return self.home / "server.pid"

    @property
    def logfile(self) -> Path:
        """The log file a daemonized server writes (``log_file``, else server.log)."""
        return Path(self.log_file) if self.log_file not in ("", "-") else self.home / "server.log"

    @property
    def effective_slots(self) -> int:
        return self.slots if self.slots > 0 else (os.cpu_count() or 1)

    @property
    def head_bytes(self) -> int:
        return int(self.output_head_mib * MIB)

    @property
    def tail_bytes(self) -> int:
        return int(self.output_tail_mib * MIB)

    @property
    def max_tail_bytes(self) -> int:
        return int(self.max_output_tail_mib * MIB)


_NUMERIC = {
    "slots": int,
    "poll_interval": float,
    "heartbeat_interval": float,
    "lease": float,
    "worker_max_tasks": int,
    "async_concurrency": int,
    "worker_max_mib": float,
    "kill_grace": float,
    "output_head_mib": float,
    "output_tail_mib": float,
    "max_output_tail_mib": float,
    "flush_interval": float,
    "messages_tail": int,
    "on_finish_timeout": float,
    "retain_count": int,
    "log_max_mib": float,
    "log_backups": int,
}
#: Allowed ranges: an interval of 0 would spin the server's loop at 100 % CPU, a
#: huge output bound overflows.
_RANGES: dict[str, tuple[float, float]] = {
    "slots": (0, 4096),
    "poll_interval": (0.01, 3600),
    "heartbeat_interval": (0.05, 3600),
    "lease": (0.1, 86400),
    "worker_max_tasks": (0, 2**31 - 1),
    "async_concurrency": (1, 1000),
    "worker_max_mib": (0, 2**20),
    "kill_grace": (0, 3600),
    "output_head_mib": (0, 1024),
    "output_tail_mib": (0, 2**20),
    "max_output_tail_mib": (0, 2**20),
    "flush_interval": (0.001, 60),
    "messages_tail": (0, 10_000_000),
    "on_finish_timeout": (0.1, 86400),
    "retain_count": (0, 2**31 - 1),
    "log_max_mib": (0, 2**20),
    "log_backups": (0, 1000),
}
_KIND_NAMES = {int: "an integer", float: "a number"}
_CHOICES = {"synchronous": ("normal", "full"), "log_level": ("debug", "info", "warning", "error"),
            "log_format": ("text", "json")}


def env_name(key: str) -> str:
    return "TASKYARD_" + key.upper()


def _fold_debug(values: dict[str, Any]) -> dict[str, Any]:
    """``debug = true`` is ``log_level = "debug"`` in the layer that says it."""
    if values.pop("debug", False):
        values["log_level"] = "debug"
    return values


def _coerce(key: str, value: Any, source: str) -> Any:
    special: dict[str, Callable[[Any, str], Any]] = {"store": _store, "imports": _imports, "web_root_path": _root_path,
               "web_public_url": _public_url,
               "web_listen": lambda v, src: check_listen(str(v), src),
               "import_path": lambda v, src: str(Path(str(v)).expanduser().absolute()),
               "status_dir": _status_dir, "status_file_env": _env_name,
               "on_finish": _hook_argv, "on_finish_url": _hook_url,
               "on_finish_secret": lambda v, src: str(v), "retain": _age,
               "log_file": _log_file, "cwd": _cwd, "run_as": _run_as,
               "debug": _debug}
    if key in special:
        return special[key](value, source)
    if key in _NUMERIC:
        kind = _NUMERIC[key]
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)  # int() would cut 2.5 slots to 2 silently
            number = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{source}: {key} must be {_KIND_NAMES[kind]}, got {value!r}",
                              field=key) from None
        low, high = _RANGES[key]
        if not low <= number <= high:  # NaN fails too
            raise ConfigError(f"{source}: {key} must be from {_num(low)} to {_num(high)},"
                              f" got {value!r}", field=key)
        return number
    if key in _CHOICES:
        text = str(value).lower()
        if text not in _CHOICES[key]:
            raise ConfigError(f"{source}: {key} must be one of {', '.join(_CHOICES[key])}", field=key)
        return text
    raise ConfigError(f"{source}: unknown setting {key!r}", field=key)


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _from_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError(f"{path}: [server] must be a table")
    values = {k: _coerce(k, v, str(path)) for k, v in server.items()}
    web = data.get("web", {})
    if not isinstance(web, dict):
        raise ConfigError(f"{path}: [web] must be a table")
    for key, value in web.items():
        if key not in ("listen", "root_path", "public_url"):
            raise ConfigError(f"{path}: [web] has no setting {key!r} (listen, root_path,"
                              " public_url)", field=key)
        values["web_" + key] = _coerce("web_" + key, value, f"{path} [web]")
    if "store" in data:  # the store is every client's setting too: also at the top level
        values.setdefault("store", _coerce("store", data["store"], str(path)))
    return values


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings._fields:
        if name == "home":
            continue
        raw = os.environ.get(env_name(name))
        if raw is not None and raw != "":
            out[name] = _coerce(name, raw, env_name(name))
    return out


def load(home: Path | str | None = None, **flags: Any) -> Settings:
    """Build settings from every layer; ``flags`` with value None are ignored."""
    if home is not None and not str(home).strip():
        raise ConfigError("--home must not be empty", field="home")
    root = (Path(home) if home is not None else default_home()).absolute()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"home {root} is not a directory", field="home")
    values: dict[str, Any] = {}
    values.update(_fold_debug(_from_toml(root / "taskyard.toml")))
    values.update(_fold_debug(_from_env()))
    values.update(_fold_debug({key: _coerce(key, value, "--" + key.replace("_", "-"))
                               for key, value in flags.items() if value is not None}))
    settings = Settings(home=root)._replace(**values)
    settings = settings._replace(debug=settings.log_level == "debug")
    if settings.lease <= settings.heartbeat_interval:
        raise ConfigError("lease must be longer than heartbeat_interval", field="lease")
    return settings
