"""``taskyard server unit`` and ``taskyard server init-script``: the files that start
the server at boot, a systemd unit or an LSB SysV init script, printed for a home.

Both run the server as root and let it drop to ``--run-as USER`` itself (rather
than systemd's ``User=``): one way for both, the server makes its home the
user's before it drops, and a unit and a script read the same. Both stop it
with ``taskyard server stop --timeout STOP_WARM``: running tasks get that long to
finish, then the server TERMs them (KILL after ``kill_grace``) and records them
stopped.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from ..config import Settings
from ..errors import UserError
from ..validate import check_user
from .common import json_flag, print_json, settings

#: seconds a stop at shutdown lets running tasks finish before the server stops them
STOP_WARM = 30
#: what the unit adds to STOP_WARM and kill_grace before systemd KILLs what is left
STOP_MARGIN = 30


def register(verbs: Any) -> None:
    """``server unit`` and ``server init-script`` (called by ``cli/server.py``)."""
    p = verbs.add_parser("unit", help="print a systemd unit for this home (Type=notify)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--user", dest="unit_kind", action="store_const", const="user",
                      help="a user unit (~/.config/systemd/user, WantedBy=default.target)")
    kind.add_argument("--system", dest="unit_kind", action="store_const", const="system",
                      help="a system unit (/etc/systemd/system, WantedBy=multi-user.target;"
                           " the default)")
    p.add_argument("--run-as", metavar="USER",
                   help="the server, started as root, drops to USER (system units)")
    json_flag(p)
    p.set_defaults(handler=cmd_unit)

    p = verbs.add_parser("init-script", help="print an LSB SysV init script for this home")
    p.add_argument("--run-as", metavar="USER",
                   help="the server, started as root, drops to USER")
    p.add_argument("--home", dest="script_home", metavar="DIR",
                   help="the home the script starts the server in (default: this one)")
    json_flag(p)
    p.set_defaults(handler=cmd_init_script)


def _taskyard(s: Settings, args: argparse.Namespace) -> list[str]:
    """The absolute command that runs this taskyard on this home (and store, when it
    was given here rather than in the home's taskyard.toml)."""
    argv = [sys.executable, "-m", "taskyard", "--home", str(s.home)]
    if args.store is not None or os.environ.get("TASKYARD_STORE"):
        argv += ["--store", s.store]
    return argv


def _systemd_word(word: str) -> str:
    """One argument of ExecStart=: specifiers (%) and variables ($) doubled, quoted
    when it holds a space, a quote or a backslash."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not any(c in word for c in " \t\"'\\;"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_line(word: str) -> str:
    """A word of the unit: a line break in it would end its line, and what follows
    would be read as a directive of its own (``ExecStartPre=...``)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in word):
        raise UserError(f"server unit: {word!r} has a control character, which a unit file"
                        " cannot hold: choose a home (and store) path without one",
                        field="home")
    return word


def unit_text(s: Settings, args: argparse.Namespace, kind: str, run_as: str | None) -> str:
    """A systemd unit: Type=notify (the server sends READY=1 when it claims),
    KillMode=mixed (TERM to the server alone; it stops its tasks itself)."""
    base = [_systemd_word(_one_line(w)) for w in _taskyard(s, args)]
    start = " ".join([*base, "server", "start", "--foreground"]
                     + (["--run-as", _systemd_word(run_as)] if run_as else []))
    stop = " ".join([*base, "server", "stop", "--timeout", str(STOP_WARM)])
    system = kind == "system"
    where = ("/etc/systemd/system/taskyard.service" if system
             else "~/.config/systemd/user/taskyard.service")
    control = "systemctl" if system else "systemctl --user"
    after = "Wants=network-online.target\nAfter=network-online.target\n" if system else ""
    home = str(s.home).replace("%", "%%")
    return f"""# taskyard server for {home}
# Install: save as {where}, then {control} daemon-reload; {control} enable --now taskyard
[Unit]
Description=taskyard background task server ({home})
{after}
[Service]
Type=notify
ExecStart={start}
# A stop lets running tasks finish for {STOP_WARM} s, then the server TERMs them (KILL after
# kill_grace) and records them stopped. systemd's TERM goes to the server alone
# (KillMode=mixed), its final KILL to everything left after TimeoutStopSec.
ExecStop={stop}
KillMode=mixed
# The unit's cgroup is the server's to divide: a task with --memory-limit runs in a
# memory cgroup of its own below it (the limit holds for all its processes together).
Delegate=yes
TimeoutStartSec=90
TimeoutStopSec={STOP_WARM + int(s.kill_grace) + STOP_MARGIN}
Restart=on-failure
RestartSec=2

[Install]
WantedBy={"multi-user.target" if system else "default.target"}
"""


def _existing_user(name: str | None) -> str | None:
    """``--run-as``: a valid login name that exists on this host (the unit or script is
    for this host's server, which would fail at boot on an unknown user)."""
    run_as = check_user(name)
    if run_as is not None:
        import pwd

        try:
            pwd.getpwnam(run_as)
        except KeyError:
            raise UserError(f"--run-as: no such user {run_as!r} on this host",
                            field="run_as") from None
    return run_as


def cmd_unit(args: argparse.Namespace) -> int:
    s = settings(args)
    kind = args.unit_kind or "system"
    if args.run_as is not None and kind == "user":
        raise UserError("--run-as is for --system units: a user unit runs as its user")
    run_as = _existing_user(args.run_as)
    text = unit_text(s, args, kind, run_as)
    if args.json:
        print_json({"home": str(s.home), "kind": kind, "run_as": run_as, "unit": text})
    else:
        sys.stdout.write(text)
    return 0


def init_script_text(s: Settings, args: argparse.Namespace, run_as: str | None) -> str:
    """An LSB init script in POSIX sh around ``server start|stop|status``."""
    command = " ".join(shlex.quote(w) for w in _taskyard(s, args))
    start_flags = f" --run-as {shlex.quote(run_as)}" if run_as else ""
    return _INIT_SCRIPT.format(home=shlex.quote(str(s.home)), command=command,
                               start_flags=start_flags, warm=STOP_WARM,
                               user=f" (as {run_as})" if run_as else "")


def cmd_init_script(args: argparse.Namespace) -> int:
    if args.script_home is not None:
        args.home = args.script_home
    s = settings(args)
    run_as = _existing_user(args.run_as)
    text = init_script_text(s, args, run_as)
    if args.json:
        print_json({"home": str(s.home), "run_as": run_as, "script": text})
    else:
        sys.stdout.write(text)
    return 0


_INIT_SCRIPT = """\
#!/bin/sh
### BEGIN INIT INFO
# Provides:          taskyard
# Required-Start:    $local_fs $remote_fs $network $syslog
# Required-Stop:     $local_fs $remote_fs $network $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: taskyard background task server
# Description:       The taskyard server for one home{user}.
### END INIT INFO
# chkconfig: 2345 90 10
# description: taskyard background task server
#
# Install: save as /etc/init.d/taskyard, chmod 755, then update-rc.d taskyard defaults
# (Debian) or chkconfig --add taskyard (Red Hat).

HOME_DIR={home}
PIDFILE="$HOME_DIR/server.pid"

taskyard() {{
    {command} "$@"
}}

# taskyard exits 2 on bad configuration: LSB's 6, "not configured"; other failures 1
lsb_code() {{
    case "$1" in
        0) return 0 ;;
        2) return 6 ;;
        *) return 1 ;;
    esac
}}

do_start() {{
    if taskyard server status >/dev/null 2>&1; then
        echo "taskyard is already running"
        return 0
    fi
    taskyard server start{start_flags}
    lsb_code $?
}}

do_stop() {{
    # running tasks get {warm} s to finish, then the server stops them and exits
    taskyard server stop --timeout {warm}
    lsb_code $?
}}

do_status() {{
    taskyard server status >/dev/null 2>&1
    case $? in
        0)
            echo "taskyard is running (pid $(cut -d' ' -f1 "$PIDFILE"))"
            return 0 ;;
        3)
            # the server empties its pidfile when it stops: a pid left there died
            if [ -s "$PIDFILE" ]; then
                echo "taskyard is dead, but $PIDFILE remains"
                return 1
            fi
            echo "taskyard is not running"
            return 3 ;;
        *)
            echo "taskyard: status unknown"
            return 4 ;;
    esac
}}

case "$1" in
    start) do_start ;;
    stop) do_stop ;;
    restart|force-reload) do_stop && do_start ;;
    status) do_status ;;
    reload)
        echo "taskyard: reload is not supported (use force-reload)" >&2
        exit 3 ;;
    *)
        echo "Usage: $0 {{start|stop|restart|force-reload|status}}" >&2
        exit 2 ;;
esac
exit $?
"""
