"""The server's user (``run_as``): started as root, it makes its home the user's,
takes the home's lock, then drops to the user's uid, gid and groups for good.

Only ``lchown`` touches the home as root (never a path followed through a link),
and only the files the server itself writes: ``taskyard.toml`` stays as it is,
so the user cannot change what a root start reads from it.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import sys
from pathlib import Path
from typing import NamedTuple

from ..config import Settings
from ..errors import ConfigError

log = logging.getLogger("taskyard.server")

#: what the server (and the web process it starts) write in the home
HOME_FILES = ("server.pid", "server.log", "web.json", "web.log", "wake.sock")
SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")


class Identity(NamedTuple):
    """A login to become: its ids, its supplementary groups, its home directory."""

    name: str
    uid: int
    gid: int
    groups: list[int]
    home: str


def identity_for(settings: Settings) -> Identity | None:
    """The user to drop to, or None when there is nothing to drop (no ``run_as``, or
    the process already runs as that user). Raises :class:`ConfigError` for an
    unknown user, or a ``run_as`` that a server not started as root cannot become."""
    if not settings.run_as:
        return None
    try:
        entry = pwd.getpwnam(settings.run_as)
    except KeyError:
        raise ConfigError(f"run_as: no such user {settings.run_as!r} on this host",
                          field="run_as") from None
    if entry.pw_uid == os.geteuid() and entry.pw_uid == os.getuid():
        return None
    if os.geteuid() != 0:
        raise ConfigError(f"run_as {settings.run_as!r} needs a server started as root"
                          f" (this one would run as uid {os.geteuid()})", field="run_as")
    groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    return Identity(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def give_home(settings: Settings, who: Identity) -> None:
    """Make the home, and the files the server writes in it, belong to ``who`` (as
    root, before the drop): the server, its workers and its web process write there
    as that user afterwards. A SQLite store elsewhere gets its file and sidecars too
    (its directory must already let the user create files)."""
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    _give(settings.home, who, directory=True)
    for name in HOME_FILES:
        _give(settings.home / name, who)
    location = settings.store_location
    if isinstance(location, Path):
        for suffix in SQLITE_SIDECARS:
            _give(location.with_name(location.name + suffix), who)


def _give(path: Path, who: Identity, directory: bool = False) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or (directory != stat.S_ISDIR(info.st_mode)):
        raise ConfigError(f"{path} is not a plain {'directory' if directory else 'file'};"
                          " refusing to give it to the run_as user", field="run_as")
    if not directory and info.st_nlink > 1:  # a hard link to a file of someone else's
        raise ConfigError(f"{path} has other hard links; refusing to give it to the"
                          " run_as user", field="run_as")
    if (info.st_uid, info.st_gid) != (who.uid, who.gid):
        os.chown(path, who.uid, who.gid, follow_symlinks=False)


def drop(who: Identity) -> None:
    """Become ``who`` for good: groups, then gid, then uid (after setuid nothing else
    could be changed). ``HOME``, ``USER`` and ``LOGNAME`` follow, for the tasks."""
    os.setgroups(who.groups)
    os.setgid(who.gid)
    os.setuid(who.uid)
    os.environ.update(HOME=who.home, USER=who.name, LOGNAME=who.name)
    log.info("running as %s (uid %d, gid %d)", who.name, who.uid, who.gid)


def check_usable(settings: Settings, who: Identity) -> None:
    """After the drop: the home, this Python and taskyard itself must be usable by the
    user (a directory above them closed to it, say /root, is found here, not by a
    worker or an import later)."""
    import taskyard

    needs = ((settings.home, os.R_OK | os.W_OK | os.X_OK, "the home"),
             (Path(os.path.realpath(sys.executable)), os.X_OK, "this Python"),
             (Path(os.__file__).parent, os.R_OK | os.X_OK, "Python's standard library"),
             (Path(taskyard.__file__).parent, os.R_OK | os.X_OK, "the taskyard package"))
    for path, mode, what in needs:
        if not os.access(path, mode):
            raise ConfigError(f"run_as {who.name}: {what} ({path}) cannot be used by that"
                              " user (a directory above it is closed to it?)", field="run_as")
