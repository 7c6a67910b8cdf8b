"""submit: wall time of one ``taskyard --home H submit -- true`` run from a shell,
median of N runs (hyperfine when installed, else timed here), in milliseconds.

Beside it, the interpreter floor (``python -c pass`` with the same interpreter,
and the system ``python3``) and the cost of importing the CLI, so what taskyard
adds on top of Python's own start-up is visible. Measured with no server (the
submit only writes the store) and with a server running the submitted tasks.

Bytecode: an installed package has its ``.pyc`` files; an editable checkout run
with ``PYTHONDONTWRITEBYTECODE=1`` (as in this sandbox) compiles every taskyard
module on every run. The main rows give each command a private
``PYTHONPYCACHEPREFIX`` (nothing is written under ``src/``) so the warm-up runs
cache the bytecode; one row repeats the submit with the caller's environment
as it is, to show what the missing cache costs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import common
from common import Section

HYPERFINE_TIMEOUT = 300.0
SUBMIT = "taskyard submit -- true, no server"
SUBMIT_SERVED = "taskyard submit -- true, server running"
FLOOR = "python -c pass (same interpreter)"
SYSTEM = "python3 -c pass (system)"
SUBMIT_NOCACHE = "taskyard submit -- true, caller's env"
IMPORT = "python -c 'import taskyard.cli.main'"


def _commands(home: Path) -> dict[str, list[str]]:
    py = str(common.VENV_BIN / "python")
    commands = {
        SUBMIT: [str(common.VENV_BIN / "taskyard"), "--home", str(home), "submit", "--", "true"],
        FLOOR: [py, "-c", "pass"],
        IMPORT: [py, "-c", "import taskyard.cli.main"],
    }
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system:
        commands[SYSTEM] = [system, "-c", "pass"]
    return commands


def _cached_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(folder / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _hyperfine(commands: dict[str, list[str]], runs: int, folder: Path,
               env: dict[str, str]) -> dict[str, float]:
    out = folder / "hyperfine.json"
    names = list(commands)
    args = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", str(out),
            "--style", "none"]
    for name in names:
        args += ["--command-name", name, shlex.join(commands[name])]
    subprocess.run(args, check=True, timeout=HYPERFINE_TIMEOUT, stdout=subprocess.DEVNULL,
                   env=env)
    results = json.loads(out.read_text())["results"]
    return {name: r["median"] * 1000 for name, r in zip(names, results, strict=True)}


def _timed(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    medians = {}
    for name, argv in commands.items():
        times = []
        for i in range(3 + runs):
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, timeout=60, stdout=subprocess.DEVNULL, env=env)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
        medians[name] = statistics.median(times)
    return medians


def _measure(commands: dict[str, list[str]], runs: int, folder: Path,
             env: dict[str, str]) -> dict[str, float]:
    if shutil.which("hyperfine"):
        return _hyperfine(commands, runs, folder, env)
    return _timed(commands, runs, env)


def _all(folder: Path, runs: int) -> dict[str, float]:
    home = folder / "home"
    commands = _commands(home)
    cached = _cached_env(folder)
    subprocess.run(commands[SUBMIT], check=True, timeout=60, stdout=subprocess.DEVNULL)
    found = _measure(commands, runs, folder, cached)
    found |= _measure({SUBMIT_NOCACHE: commands[SUBMIT]}, runs, folder, dict(os.environ))
    with common.taskyard_server(home, 2):
        found |= _measure({SUBMIT_SERVED: commands[SUBMIT]}, runs, folder, cached)
    return found


def run(quick: bool, repeat: int) -> Section:
    runs = 5 if quick else 20
    tool = "hyperfine -N" if shutil.which("hyperfine") else "subprocess"
    s = Section(f"submit wall time: median of {runs} runs via {tool} (ms, lower is better)")
    with common.tempdir("submit") as folder:
        for name, value in _all(folder, runs).items():
            s.add(name, value, "ms")
    s.ratio("submit wall time, no server (ms)", s.value(SUBMIT), "<= 80")
    s.ratio("submit wall time, server running (ms)", s.value(SUBMIT_SERVED), "<= 80")
    s.ratio("submit/python -c pass", s.value(SUBMIT) / s.value(FLOOR))
    s.ratio("submit - python -c pass (ms)", s.value(SUBMIT) - s.value(FLOOR))
    s.ratio("submit - import taskyard.cli.main (ms)", s.value(SUBMIT) - s.value(IMPORT))
    dont = os.environ.get("PYTHONDONTWRITEBYTECODE")
    s.notes.append("rows without \"caller's env\" use a private PYTHONPYCACHEPREFIX (bytecode"
                   " cached by the warm-up runs); the caller's env has"
                   f" PYTHONDONTWRITEBYTECODE={dont!r}")
    return s
