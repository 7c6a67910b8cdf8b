"""Settings: defaults < ``taskyard.toml`` < ``TASKYARD_*`` environment < flags.

One typed :class:`Settings`; every field can come from any layer. Flags are
defined by the CLI with the environment variable shown in ``--help``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError

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
    worker_max_mib: float = 1024.0  #: ... or once its memory grew this much (0: never)
    kill_grace: float = 5.0  #: seconds between TERM and KILL
    output_head_mib: float = 1.0  #: first MiB of each stream always kept
    output_tail_mib: float = 32.0  #: last MiB of each stream kept
    flush_interval: float = 0.05  #: max seconds output waits in memory before it is stored
    synchronous: str = "normal"  #: SQLite synchronous: normal survives process crashes, full power loss
    log_level: str = "info"

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
        return self.home / "server.log"

    @property
    def effective_slots(self) -> int:
        return self.slots if self.slots > 0 else (os.cpu_count() or 1)

    @property
    def head_bytes(self) -> int:
        return int(self.output_head_mib * MIB)

    @property
    def tail_bytes(self) -> int:
        return int(self.output_tail_mib * MIB)


_NUMERIC = {
    "slots": int,
    "poll_interval": float,
    "heartbeat_interval": float,
    "lease": float,
    "worker_max_tasks": int,
    "worker_max_mib": float,
    "kill_grace": float,
    "output_head_mib": float,
    "output_tail_mib": float,
    "flush_interval": float,
}
#: Allowed ranges: an interval of 0 would spin the server's loop at 100 % CPU, a
#: huge output bound overflows.
_RANGES: dict[str, tuple[float, float]] = {
    "slots": (0, 4096),
    "poll_interval": (0.01, 3600),
    "heartbeat_interval": (0.05, 3600),
    "lease": (0.1, 86400),
    "worker_max_tasks": (0, 2**31 - 1),
    "worker_max_mib": (0, 2**20),
    "kill_grace": (0, 3600),
    "output_head_mib": (0, 1024),
    "output_tail_mib": (0, 2**20),
    "flush_interval": (0.001, 60),
}
_KIND_NAMES = {int: "an integer", float: "a number"}
_CHOICES = {"synchronous": ("normal", "full"), "log_level": ("debug", "info", "warning", "error")}


def env_name(key: str) -> str:
    return "TASKYARD_" + key.upper()


def _coerce(key: str, value: Any, source: str) -> Any:
    if key == "store":
        return _store(value, source)
    if key == "imports":
        return _imports(value, source)
    if key == "import_path":
        return str(Path(str(value)).expanduser().absolute())
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


def _store(value: Any, source: str) -> str:
    """A postgresql:// URL as given, or a SQLite path made absolute."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(f"{source}: store must be a file path or a postgresql:// URL",
                          field="store")
    if value.startswith(("postgresql://", "postgres://")):
        return value
    if "dbname=" in value or "host=" in value:
        raise ConfigError(f"{source}: store: give PostgreSQL as a postgresql:// URL"
                          " (postgresql://user@host:5432/db), not key=value", field="store")
    if "://" in value:
        raise ConfigError(f"{source}: unknown store URL scheme in {value.split('://')[0]!r}"
                          " (use a file path or postgresql://)", field="store")
    return str(Path(value).expanduser().absolute())


def _imports(value: Any, source: str) -> str:
    """Module names, from a TOML list or a comma-separated string."""
    names = value if isinstance(value, list) else str(value).split(",")
    cleaned = [str(n).strip() for n in names if str(n).strip()]
    for name in cleaned:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(f"{source}: imports: {name!r} is not a module name",
                              field="imports")
    return ",".join(cleaned)


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
    values.update(_from_toml(root / "taskyard.toml"))
    values.update(_from_env())
    for key, value in flags.items():
        if value is not None:
            values[key] = _coerce(key, value, "--" + key.replace("_", "-"))
    settings = Settings(home=root)._replace(**values)
    if settings.lease <= settings.heartbeat_interval:
        raise ConfigError("lease must be longer than heartbeat_interval", field="lease")
    return settings
