"""``taskyard server start|stop|restart|status|unit``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..config import Settings, default_home
from ..errors import ConfigError, UserError
from ..lifecycle import ACTIVE
from ..model import iso
from ..ops import wait_for
from ..store.base import Instance
from .common import (
    json_flag,
    mebibytes,
    non_negative_int,
    print_json,
    seconds,
    settings,
    store,
    utc,
    utc_flag,
    verb_group,
)
from .main import envvar

START_TIMEOUT = 30.0
STARTING_TIMEOUT = 30.0


def register(sub: Any) -> None:
    verbs = verb_group(sub, "server", "start, stop and inspect the server")

    p = verbs.add_parser("start", help="start the server (daemonized unless --foreground)")
    _start_flags(p)
    p.set_defaults(handler=cmd_start)

    p = verbs.add_parser("stop", help="stop the server: by default let running tasks finish")
    _stop_flags(p)
    json_flag(p)
    p.set_defaults(handler=cmd_stop)

    p = verbs.add_parser("restart", help="stop (like stop) then start (like start)")
    _start_flags(p)
    _stop_flags(p)
    p.set_defaults(handler=cmd_restart)

    p = verbs.add_parser("status", help="exit 0 if a server runs, 3 if not; the servers on"
                                        " the store")
    utc_flag(p)
    json_flag(p)
    p.set_defaults(handler=cmd_status)

    from . import bootfiles

    bootfiles.register(verbs)


def _start_flags(p: argparse.ArgumentParser) -> None:
    envvar(p, "--slots", env="TASKYARD_SLOTS", type=non_negative_int,
           help="tasks run at once (default: number of cores)")
    envvar(p, "--poll-interval", env="TASKYARD_POLL_INTERVAL", type=seconds, metavar="S",
           help="seconds between store polls when no wake hint arrives (default 1)")
    envvar(p, "--kill-grace", env="TASKYARD_KILL_GRACE", type=seconds, metavar="S",
           help="seconds between TERM and KILL (default 5)")
    envvar(p, "--output-tail-mib", env="TASKYARD_OUTPUT_TAIL_MIB", type=mebibytes, metavar="N",
           help="MiB kept from the end of each output stream (default 32)")
    envvar(p, "--log-level", env="TASKYARD_LOG_LEVEL",
           choices=("debug", "info", "warning", "error"), help="server log level")
    envvar(p, "--log-format", env="TASKYARD_LOG_FORMAT", choices=("text", "json"),
           help="server log lines: text (default) or json (one object a line)")
    envvar(p, "--log-file", env="TASKYARD_LOG_FILE", metavar="PATH",
           help="the server's log file, - for standard error (default: server.log in the"
                " home; standard error with --foreground)")
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                   help="a module of task functions for the workers to import (repeatable;"
                        " looked up from the current directory too) [env TASKYARD_IMPORTS]")
    p.add_argument("--foreground", action="store_true", help="run in this process (for systemd)")
    envvar(p, "--run-as", env="TASKYARD_RUN_AS", metavar="USER",
           help="started as root: drop to USER (uid, gid, groups) before claiming anything;"
                " tasks run as USER")
    envvar(p, "--cwd", env="TASKYARD_CWD", metavar="DIR",
           help="change into DIR at start: function tasks, and command tasks submitted"
                " without a directory, run there")
    p.add_argument("--debug", action="store_true", default=None,
                   help="log at debug level (--log-level debug) [env TASKYARD_DEBUG]")
    envvar(p, "--web-listen", env="TASKYARD_WEB_LISTEN", metavar="HOST:PORT",
           help="where the panel and HTTP API listen (default 127.0.0.1:8470; [web] listen)")
    p.add_argument("--no-web", action="store_true",
                   help="do not start the panel and HTTP API beside the server (also:"
                        " listen = \"\" in [web])")


def _stop_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--now", action="store_true",
                   help="TERM every running task (KILL after the grace), record them stopped")
    p.add_argument("--timeout", type=seconds, metavar="S",
                   help="warm stop for at most S seconds, then as --now")


def _settings(args: argparse.Namespace) -> Settings:
    s = settings(args, slots=args.slots, poll_interval=args.poll_interval,
                 kill_grace=args.kill_grace, output_tail_mib=args.output_tail_mib,
                 log_level=args.log_level, log_format=args.log_format, log_file=args.log_file,
                 run_as=args.run_as, cwd=args.cwd, debug=args.debug,
                 imports=",".join(args.imports) if args.imports else None,
                 web_listen="" if args.no_web else args.web_listen)
    if not s.import_path:  # task modules are found where the server runs (or was started)
        s = s._replace(import_path=s.cwd or os.getcwd())
    return s


def cmd_start(args: argparse.Namespace) -> int:
    s = _settings(args)
    from ..store import require_driver

    require_driver(s.store_location)  # said here, not in the log of a server that died
    if s.status_dir:
        from ..server.statusfiles import check_dir

        check_dir(s.status_dir)
    if args.foreground or s.log_file not in ("", "-"):
        _check_log_file(s.log_file if args.foreground else str(s.logfile))
    from ..server.privileges import identity_for

    identity_for(s)  # an unknown user, or run_as without root: said here, exit 2
    if args.foreground:
        from ..server.daemon import serve

        ready = os.environ.pop("TASKYARD_READY_FD", None)
        handle = os.fdopen(int(ready), "wb") if ready and ready.isdigit() else None
        return serve(s, handle)
    from ..server.pidfile import running_message, server_running

    pid = server_running(s.pidfile)
    if pid is not None:
        raise UserError(running_message(pid))
    return _daemonize(args, s)


def _check_log_file(path: str) -> None:
    """A log file that cannot be written is said here, in one line."""
    if path in ("", "-"):
        return
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise ConfigError(f"log_file {path} cannot be written: {exc.strerror or exc}",
                          field="log_file") from None


def _daemonize(args: argparse.Namespace, s: Settings) -> int:
    s.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    argv = [sys.executable, "-m", "taskyard", "--home", str(s.home)]
    if s.store:
        argv += ["--store", s.store]
    argv += ["server", "start", "--foreground"]
    if s.log_file == "-":
        raise ConfigError("log_file - (standard error) needs --foreground: a daemon has no"
                          " terminal to write to", field="log_file")
    argv += ["--log-file", str(s.logfile)]  # opened by the server: reopened when moved
    for flag in ("slots", "poll_interval", "kill_grace", "output_tail_mib", "log_level",
                 "log_format", "run_as"):
        value = getattr(args, flag)
        if value is not None:
            argv += ["--" + flag.replace("_", "-"), str(value)]
    if args.cwd is not None:  # made absolute here: the server starts in /
        argv += ["--cwd", s.cwd]
    if args.debug:
        argv += ["--debug"]
    for module in args.imports or ():
        argv += ["--import", module]
    if args.no_web:
        argv += ["--no-web"]
    elif args.web_listen:
        argv += ["--web-listen", args.web_listen]
    import subprocess

    env = dict(os.environ, TASKYARD_READY_FD=str(write_end), TASKYARD_IMPORT_PATH=s.import_path)
    if s.status_dir:  # resolved here: the daemon runs in /, where a relative one differs
        env["TASKYARD_STATUS_DIR"] = s.status_dir
    # Never through a link: with run_as, the home belongs to the server's user.
    log_fd = os.open(s.logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with open(log_fd, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, pass_fds=(write_end,), start_new_session=True, cwd="/")
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        answer = ready.read().decode(errors="replace").strip()
    first, _, web = answer.partition("\n")
    if first == "ok":
        sys.stdout.write(f"server started (pid {proc.pid}, home {s.home}, log {s.logfile})\n")
        _say_web(args, s, web.strip())
        return 0
    code = proc.wait(timeout=START_TIMEOUT)
    message = answer.removeprefix("error: ") or f"the server exited with code {code}"
    sys.stderr.write(f"taskyard: error: {message} (log: {s.logfile})\n")
    return 1


def _say_web(args: argparse.Namespace, s: Settings, line: str) -> None:
    """What became of the panel: its login link, or in one line why it did not start
    and how to choose another address (the task server runs either way)."""
    kind, _, detail = line.partition(": ")
    if kind == "web" and detail.startswith("http"):
        from .. import access
        from ..ops import actor

        ticket = access.login_ticket(store(args), by=actor())
        sys.stdout.write(f"panel: {detail}/ (API: {detail}/api/v1/docs)\n"
                         f"log in (once, within 10 minutes): {detail}/login?ticket={ticket}\n")
    elif kind == "web-error":
        sys.stderr.write(f"taskyard: note: the panel did not start: {detail}; the task server"
                         " runs without it. Choose another address with --web-listen"
                         " HOST:PORT (or listen in [web] of taskyard.toml, or"
                         " TASKYARD_WEB_LISTEN), or turn it off with --no-web\n")


def _pid_despite(args: argparse.Namespace, error: ConfigError) -> int | None:
    """The running server's pid when the settings cannot be loaded (a broken
    taskyard.toml, a bad TASKYARD_* value): the pidfile needs only the home."""
    from ..server.pidfile import server_running

    home = default_home() if args.home is None else Path(args.home)
    try:
        return server_running(Settings(home=home.absolute()).pidfile)
    except OSError:
        raise error from None


def cmd_stop(args: argparse.Namespace) -> int:
    from ..server.pidfile import read_pidfile, server_running

    try:
        s = settings(args)
    except ConfigError as exc:
        pid = _pid_despite(args, exc)
        if pid is None:
            raise
        raise ConfigError(f"{exc} (fix it to stop the server with taskyard, or send the server"
                          f" SIGTERM for a warm stop: kill {pid})", field=exc.field) from None
    as_json = getattr(args, "json", False)  # restart stops without --json
    pid = server_running(s.pidfile)
    if pid is None:
        if as_json:
            print_json({"stopped": False, "running": False})
        else:
            sys.stdout.write("server is not running\n")
        return 0
    # The instance id is written once the server is registered in the store.
    found = wait_for(lambda: read_pidfile(s.pidfile)[1], STARTING_TIMEOUT)
    if found is None:
        raise UserError(f"the server (pid {pid}) did not finish starting within"
                        f" {STARTING_TIMEOUT:g}s; see {s.logfile}")
    instance: str = found
    db = store(args)
    mode = "now" if args.now else (f"warm:{args.timeout}" if args.timeout is not None else "warm")
    db.request_stop(instance, mode)
    db.wake(b"s")
    told = False
    while server_running(s.pidfile) is not None:
        if not told and not args.now:
            active = db.list_tasks(status=sorted(ACTIVE))
            if active:
                out = sys.stderr if as_json else sys.stdout
                out.write(f"waiting for {len(active)} running task(s) to finish"
                          " (taskyard server stop --now stops them)\n")
                out.flush()
            told = True
        time.sleep(0.05)
    if as_json:
        print_json({"stopped": True, "pid": pid})
    else:
        sys.stdout.write(f"server stopped (pid {pid})\n")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    cmd_stop(args)
    args.foreground = False
    return cmd_start(args)


def cmd_status(args: argparse.Namespace) -> int:
    from ..server.pidfile import read_pidfile, server_running

    try:
        s = settings(args)
    except ConfigError as exc:  # still say whether it runs (LSB: 0 running, 3 not)
        pid = _pid_despite(args, exc)
        sys.stderr.write(f"taskyard: warning: {exc}\n")
        if args.json:
            print_json({"running": pid is not None, "pid": pid, "config_error": str(exc)})
        else:
            sys.stdout.write(f"server is running (pid {pid})\n" if pid is not None
                             else "server is not running\n")
        return 0 if pid is not None else 3
    pid = server_running(s.pidfile)
    if pid is None:
        if args.json:
            print_json({"running": False})
        else:
            sys.stdout.write("server is not running\n")
        return 3
    _, instance_id = read_pidfile(s.pidfile)
    db = store(args)
    servers = db.instances()
    mine = next((i for i in servers if i.id == instance_id), None)
    active = len(db.list_tasks(status=sorted(ACTIVE)))
    from ..server.cgroups import described as memory_cgroups
    from ..web.serve import running as web_running

    web = web_running(s)
    info = {"running": True, "pid": pid, "instance": instance_id, "home": str(s.home),
            "web": ({"url": web.get("url"), "pid": web.get("pid")} if web else None),
            "slots": mine.slots if mine else None, "running_tasks": active,
            "servers": [{"instance": i.id, "host": i.host, "pid": i.pid, "slots": i.slots,
                         "heartbeat_at": iso(i.heartbeat_at)} for i in servers],
            "memory_cgroup": memory_cgroups(s.home)}
    if args.json:
        print_json(info)
    else:
        _print_status(info, servers, s, utc(args))
    return 0


def _print_status(info: dict[str, Any], servers: list[Instance], s: Settings,
                  in_utc: bool) -> None:
    """A line on this home's server, its home, then every server on the store (this
    home's, and the others sharing the store)."""
    from rich.text import Text

    from ..liveness import alive
    from .render import clock, human_seconds, safe
    from .tables import TIME, WRAP, Col, console, table

    others = f", {len(servers) - 1} other server(s) on the store" if len(servers) > 1 else ""
    out = console()
    web = info.get("web")
    from ..web.serve import last_error

    error = last_error(s)
    panel = (f"panel {web['url']}/ (pid {web['pid']})" if web else
             error if error else
             "panel not running (see web.log in the home)" if s.web_listen else "panel off")
    out.print(Text(f"server is running (pid {info['pid']}, {info['slots']} slots,"
                   f" {info['running_tasks']} task(s) running{others})\nhome {s.home}\n"
                   f"{panel}\n{_memory_line(info.get('memory_cgroup'))}"), overflow="fold")
    mine, lease, now = info["instance"], s.lease, time.time()
    rows = [[i.id, safe(i.host), str(i.pid), str(i.slots), clock(i.started_at, in_utc, now=now),
             f"{human_seconds(max(0.0, now - i.heartbeat_at))} ago",
             "this home" if i.id == mine else "alive" if alive(i, lease, now) else "silent"]
            for i in servers]
    table([Col("SERVER"), Col("HOST", WRAP, floor=12), Col("PID", right=True),
           Col("SLOTS", right=True), Col("STARTED", TIME), Col("HEARD", right=True),
           Col("STATE")], rows)


def _memory_line(found: dict[str, Any] | None) -> str:
    """How this home's server enforces memory limits (see server/cgroups.py)."""
    if not found:
        return "memory limits: not known (no memory-cgroup.json in the home)"
    if found.get("mode") in ("v1", "v2"):
        return (f"memory limits: a cgroup {found['mode']} per task, under"
                f" {safe_text(found.get('subtree'))}")
    return f"memory limits: RLIMIT_AS per process ({safe_text(found.get('why'))})"


def safe_text(value: object) -> str:
    from .render import safe

    return safe(str(value))
