"""Boot integration: the systemd unit (checked by systemd-analyze verify), systemd's
readiness protocol, the LSB init script driven as root, and a root server that
drops to nobody (run_as). In CI (CI=true) none of these may skip: ``python3 dev.py
test`` installs systemd-analyze and lets nobody reach this Python first."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskyard import Reason, Status, Yard
from taskyard.testing import cli, process_alive, server_process, stop_server, wait_for

NOBODY = 65534


def _required(reason: str) -> None:
    """Skip here, fail in CI: there the machine is set up for it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (python3 dev.py test sets this up in CI)")
    pytest.skip(reason)


def _need_root() -> None:
    if os.geteuid() != 0:
        _required("needs root")


def _need_python_for_nobody() -> None:
    _need_root()
    try:
        probe = subprocess.run([sys.executable, "-c", "import taskyard"], user=NOBODY,
                               group=NOBODY, extra_groups=[], cwd="/", capture_output=True,
                               timeout=60, check=False)
        failure = probe.stderr.decode()[-200:] if probe.returncode != 0 else ""
    except PermissionError as exc:  # a directory above the interpreter is closed to it
        failure = str(exc)
    if failure:
        _required(f"nobody cannot run {sys.executable}: {failure}")


@pytest.fixture
def public_home() -> Iterator[Path]:
    """A home under a 0755 directory of /tmp (pytest's tmp_path sits under a 0700 one,
    which nobody cannot pass)."""
    top = Path(tempfile.mkdtemp(prefix="taskyard-boot-", dir="/tmp"))
    top.chmod(0o755)
    try:
        yield top / "home"
    finally:
        shutil.rmtree(top, ignore_errors=True)


# -- the systemd unit ----------------------------------------------------------------

@pytest.mark.parametrize("flags", [[], ["--system"], ["--user"],
                                   ["--system", "--run-as", "nobody"]])
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path, flags: list[str]) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        _required("systemd-analyze is not installed (apt-get install systemd)")
        return
    home = tmp_path / "a home with 100% of $HOME"  # quoting, % and $ in ExecStart=
    done = cli(home, "server", "unit", *flags, "--json", check=True)
    unit = json.loads(done.stdout)["unit"]
    lines = unit.splitlines()
    assert "Type=notify" in lines and "KillMode=mixed" in lines and "Delegate=yes" in lines
    assert "Restart=on-failure" in lines
    stop = next(int(x.split("=")[1]) for x in lines if x.startswith("TimeoutStopSec="))
    assert stop > 30 + 5  # the warm stop of ExecStop, then the default kill_grace
    start = next(x for x in lines if x.startswith("ExecStart="))
    assert start.startswith(f"ExecStart={sys.executable} -m taskyard --home ")
    assert '"' + str(home).replace("%", "%%").replace("$", "$$") + '"' in start
    assert start.endswith("server start --foreground"
                          + (" --run-as nobody" if "--run-as" in flags else ""))
    user = "--user" in flags
    assert ("WantedBy=default.target" if user else "WantedBy=multi-user.target") in lines
    path = tmp_path / "taskyard.service"
    path.write_text(unit)
    runtime = tmp_path / "runtime"  # a user manager wants a runtime directory
    runtime.mkdir(mode=0o700)
    verify = subprocess.run([tool, *(["--user"] if user else []), "verify", "--man=no",
                             str(path)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)),
                            check=False)
    said = verify.stdout + verify.stderr
    assert verify.returncode == 0, said
    # A line systemd cannot parse is a warning with exit 0: nothing may name the unit.
    assert "taskyard.service" not in said, said


def test_a_user_unit_has_no_run_as(home: Path) -> None:
    done = cli(home, "server", "unit", "--user", "--run-as", "nobody")
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1 and b"--run-as is for --system" in done.stderr
    bad = cli(home, "server", "unit", "--run-as=a b")
    assert bad.returncode == 2 and b"not a valid user name" in bad.stderr


@pytest.mark.parametrize("kind", ["--system", "--user"])
def test_a_home_with_a_newline_cannot_add_lines_to_the_unit(tmp_path: Path, kind: str) -> None:
    """A newline in the home's path went into the unit as it was: the text after it was
    a line of its own (a directive, ExecStartPre=... here). It is one line and exit 2."""
    home = tmp_path / "x\nExecStartPre=/bin/touch /tmp/taskyard-unit-injected"
    done = cli(home, "server", "unit", kind)
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stderr.decode()
    assert said.count("\n") == 1 and "a unit file cannot hold" in said, said
    assert done.stdout == b""
    script = cli(home, "server", "init-script")  # sh holds a newline within quotes
    assert script.returncode == 0 and subprocess.run(
        ["sh", "-n"], input=script.stdout, check=False).returncode == 0


@pytest.mark.parametrize("verb", [["server", "unit", "--system"], ["server", "init-script"],
                                  ["server", "start"]])
def test_an_unknown_run_as_user_is_one_line_and_exit_2(home: Path, verb: list[str]) -> None:
    done = cli(home, *verb, "--run-as", "nosuchuser-taskyard")
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stderr.decode()
    assert said.count("\n") == 1 and "no such user 'nosuchuser-taskyard'" in said, said
    assert done.stdout == b""


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_a_foreground_server_tells_systemd_ready_then_stopping(home: Path, tmp_path: Path,
                                                               kind: str) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"taskyard-test-{uuid.uuid4().hex}"
    address = "\0" + name if kind == "abstract" else str(tmp_path / "notify")
    sock.bind(address)
    sock.settimeout(30)  # each recv waits for its datagram, at most this long
    env = dict(os.environ, NOTIFY_SOCKET="@" + name if kind == "abstract" else address)
    proc = server_process(home, env=env)
    try:
        ready = sock.recv(256).decode()
        assert "READY=1" in ready.split("\n") and f"MAINPID={proc.pid}" in ready
        with Yard(home) as y:  # its tasks do not inherit the socket
            task = y.submit(["sh", "-c", "echo ${NOTIFY_SOCKET-unset}"])
            assert y.wait(task.id, timeout=30) is not None
            assert y.logs(task.id).data == b"unset\n"
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(256) == b"STOPPING=1"
        assert proc.wait(30) == 0
    finally:
        stop_server(proc)
        sock.close()


# -- the SysV init script ------------------------------------------------------------

def _script(home: Path, *flags: str) -> Path:
    text = cli(home, "server", "init-script", "--home", str(home), *flags,
               check=True).stdout.decode()
    assert text.startswith("#!/bin/sh\n### BEGIN INIT INFO\n")
    assert "### END INIT INFO" in text and "# Provides:          taskyard" in text
    path = home.parent / "taskyard.init"
    path.write_text(text)
    path.chmod(0o755)
    return path


def _run(script: Path, action: str) -> int:
    return subprocess.run(["/bin/sh", str(script), action], capture_output=True,
                          timeout=120, cwd="/", check=False).returncode


def _pid(home: Path) -> int | None:
    words = (home / "server.pid").read_text().split() if (home / "server.pid").exists() else []
    return int(words[0]) if words else None


@pytest.mark.parametrize("run_as", [None, "nobody"])
def test_the_init_script_as_root(public_home: Path, run_as: str | None) -> None:
    if run_as:
        _need_python_for_nobody()
    else:
        _need_root()
    home = public_home
    home.mkdir()
    (home / "taskyard.toml").write_text('[server]\nslots = 2\n[web]\nlisten = ""\n')
    script = _script(home, *(["--run-as", run_as] if run_as else []))
    try:
        assert _run(script, "status") == 3
        assert _run(script, "start") == 0
        first = _pid(home)
        assert first is not None and process_alive(first)
        assert _run(script, "status") == 0
        assert _run(script, "start") == 0 and _pid(home) == first  # already running: 0
        with Yard(home) as y:
            task = y.submit(["id", "-u"])
            ended = y.wait(task.id, timeout=30)
            assert ended is not None and ended.status is Status.SUCCEEDED
            assert y.logs(task.id).data == f"{NOBODY if run_as else 0}\n".encode()
        assert _run(script, "restart") == 0
        second = _pid(home)
        assert second is not None and second != first and process_alive(second)
        assert _run(script, "force-reload") == 0 and _pid(home) not in (None, second)
        assert _run(script, "stop") == 0
        assert _pid(home) is None  # emptied: no server holds the home
        assert _run(script, "status") == 3
        assert _run(script, "stop") == 0  # stopping a stopped server is a success
        assert (_run(script, "reload"), _run(script, "bogus")) == (3, 2)
        assert _run(script, "start") == 0
        dead = _pid(home)
        assert dead is not None
        os.kill(dead, signal.SIGKILL)
        wait_for(lambda: not process_alive(dead), timeout=30, message="the server died")
        assert _run(script, "status") == 1  # dead, but its pidfile remains
        assert _run(script, "start") == 0 and _run(script, "status") == 0
    finally:
        _run(script, "stop")


# -- run_as for the whole server -----------------------------------------------------

def _ids(status: str, field: str) -> list[str]:
    line = next(x for x in status.splitlines() if x.startswith(field + ":"))
    return line.split()[1:]


def test_a_root_server_drops_to_nobody(public_home: Path) -> None:
    _need_python_for_nobody()
    home = public_home
    cli(home, "ls", check=True)  # the store made by root first: the server gives it away
    (home / "taskyard.toml").write_text("[server]\nslots = 2\n")
    proc = server_process(home, "--run-as", "nobody")
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert _ids(status, "Uid") == [str(NOBODY)] * 4
        assert _ids(status, "Gid") == [str(NOBODY)] * 4
        assert _ids(status, "Groups") == [str(NOBODY)]
        with Yard(home) as y:
            task = y.submit(["sh", "-c", "id -u; id -G; echo $USER $LOGNAME"])
            ended = y.wait(task.id, timeout=30)
            assert ended is not None and ended.status is Status.SUCCEEDED
            assert y.logs(task.id).data == f"{NOBODY}\n{NOBODY}\nnobody nobody\n".encode()
            y.add_tenant("ops", run_as="root")  # another user needs a root server, as before
            other = y.wait(y.submit(["true"], tenant="ops").id, timeout=30)
            assert other is not None and other.reason is Reason.SPAWN
            assert "the server is not root" in (other.error or "")
        for name in ("taskyard.db", "server.pid", "server.log"):
            assert (home / name).stat().st_uid == NOBODY, name
        assert home.stat().st_uid == NOBODY
        assert (home / "taskyard.toml").stat().st_uid == 0  # what a root start reads stays
    finally:
        stop_server(proc)


def test_run_as_errors_at_start_are_one_line(public_home: Path) -> None:
    _need_python_for_nobody()
    unknown = cli(public_home, "server", "start", "--run-as", "no-such-user-q7", "--no-web")
    assert unknown.returncode == 2
    assert unknown.stderr.decode() == ("taskyard: error: run_as: no such user"
                                       " 'no-such-user-q7' on this host\n")
    as_nobody = subprocess.run([sys.executable, "-m", "taskyard", "--home", str(public_home),
                                "server", "start", "--run-as", "root", "--no-web"],
                               user=NOBODY, group=NOBODY, extra_groups=[], cwd="/",
                               capture_output=True, timeout=60, check=False)
    assert as_nobody.returncode == 2
    assert b"run_as 'root' needs a server started as root" in as_nobody.stderr
    assert as_nobody.stderr.count(b"\n") == 1
    assert not public_home.exists()  # refused before anything was made
