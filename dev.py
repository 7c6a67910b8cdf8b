#!/usr/bin/env python3
"""Developer entry point; needs only python3 (>= 3.11).

    python3 dev.py start    install into .venv, start a server on the embedded store, run a first task
    python3 dev.py test     install into .venv, then ruff, mypy and the whole test suite
    python3 dev.py bench    run the benchmarks in bench/

Both install what they need themselves (a virtual environment in .venv with the
package and its dev extras), and only reinstall when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".taskyard-installed"


def run(*cmd: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check, env=env).returncode


def _make_venv() -> None:
    if PY.exists():
        return
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on any python3 and says why not
        sys.exit(f"taskyard needs Python >= 3.11 (this is {sys.version.split()[0]})")
    try:
        run(sys.executable, "-m", "venv", VENV)
    except subprocess.CalledProcessError:
        # Debian's python3 lacks ensurepip until python3-venv is installed.
        shutil.rmtree(VENV, ignore_errors=True)
        if os.geteuid() == 0 and shutil.which("apt-get"):
            run("apt-get", "update", "-q")
            run("apt-get", "install", "-y", "-q", "python3-venv")
            run(sys.executable, "-m", "venv", VENV)
        else:
            sys.exit("cannot create a virtual environment: install python3-venv")


def install(extras: str = "dev") -> None:
    """Create .venv and install taskyard (editable) with ``extras``, when needed."""
    _make_venv()
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    run(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "-q", "-e", f".[{extras}]")
    STAMP.write_text(digest)


def postgres_ready(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_postgres() -> None:
    """In CI, PostgreSQL tests must run: start a server from Debian's packages if none answers."""
    if postgres_ready() or os.environ.get("CI") != "true":
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        run("apt-get", "update", "-q")
        run("apt-get", "install", "-y", "-q", "postgresql")
        versions = sorted(os.listdir("/etc/postgresql"))
        run("pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start")


CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> None:
    """In CI, the panel's browser tests must run: Debian's chromium for Playwright
    (a browser download by Playwright itself does not work here)."""
    if os.path.exists(CHROMIUM) or os.environ.get("CI") != "true":
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        run("apt-get", "update", "-q")
        run("apt-get", "install", "-y", "-q", "chromium")


def ensure_systemd_analyze() -> None:
    """In CI, the generated systemd unit must be checked: Debian's systemd package has
    systemd-analyze (only the tool is used; nothing is started)."""
    if shutil.which("systemd-analyze") or os.environ.get("CI") != "true":
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        run("apt-get", "update", "-q")
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd")


def ensure_run_as_python() -> None:
    """In CI, the run_as tests drop a root server to nobody, who must be able to run
    this Python: a pyenv under /root (0700) is closed to it. Each directory on the way
    to the interpreter, its standard library and the checkout gets o+x (traverse only:
    nothing can be listed or read that was not readable before)."""
    if os.environ.get("CI") != "true" or os.geteuid() != 0:
        return
    real = Path(os.path.realpath(VENV / "bin" / "python"))
    base = Path(subprocess.run([str(real), "-c", "import os; print(os.__file__)"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for target in (real, base, ROOT):
        for folder in target.parents:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                folder.chmod(mode | 0o001)


def cmd_test(args: list[str]) -> int:
    install()
    ensure_postgres()
    ensure_chromium()
    ensure_systemd_analyze()
    ensure_run_as_python()
    bin_ = VENV / "bin"
    run(bin_ / "ruff", "check", *[p for p in ("src", "tests", "bench", "dev.py") if (ROOT / p).exists()])
    run(bin_ / "mypy")
    return run(PY, "-m", "pytest", "-q", *(args or ["tests"]), check=False)


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def cmd_start(args: list[str]) -> int:
    install()
    taskyard = VENV / "bin" / "taskyard"
    status = run(taskyard, *args, "server", "status", check=False)
    if status != 0:
        # The panel's usual address, unless another home's panel has it: then any free port.
        listen = "127.0.0.1:8470" if _free("127.0.0.1", 8470) else "127.0.0.1:0"
        run(taskyard, *args, "server", "start", "--web-listen", listen)
    out = subprocess.run([str(taskyard), *args, "submit", "--name", "hello", "--", "sh", "-c",
                          "echo hello from taskyard; uname -a"],
                         capture_output=True, text=True, check=True).stdout.strip()
    run(taskyard, *args, "wait", out, "--timeout", "30")
    run(taskyard, *args, "ls", "--limit", "10")
    run(taskyard, *args, "logs", out)
    print(f"\nThe server runs in the background. Try:\n  {taskyard} submit -- sleep 30\n"
          f"  {taskyard} ls\n  {taskyard} server stop")
    link = subprocess.run([str(taskyard), *args, "web", "login-url"], capture_output=True,
                          text=True, check=False)
    if link.returncode == 0 and link.stdout.strip():
        print(f"\nThe panel (\"Background tasks\"): open this link in a browser to log in"
              f" (once, within 10 minutes; {taskyard} web login-url makes another):\n"
              f"  {link.stdout.strip()}")
        sys.stderr.write(link.stderr)
    else:
        sys.stderr.write(link.stderr or "dev.py: could not make a login link\n")
    return 0


def cmd_bench(args: list[str]) -> int:
    install()
    return run(PY, "bench/run.py", *args, check=False)


def main() -> int:
    verbs = {"test": cmd_test, "start": cmd_start, "bench": cmd_bench}
    if len(sys.argv) < 2 or sys.argv[1] not in verbs:
        print(__doc__)
        return 2
    try:
        return verbs[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        print(f"dev.py: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})", file=sys.stderr)
        return exc.returncode or 1


if __name__ == "__main__":
    raise SystemExit(main())
