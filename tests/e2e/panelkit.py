"""What the panel's browser tests share: Debian's chromium driven by Playwright (never
a browser Playwright downloads), a deployment (a task server and ``taskyard web`` on
one home), logging in through ``taskyard web login-url``, and the commands the tests'
tasks run.

In CI (``CI=true``) the browser tests must run: without /usr/bin/chromium they fail.
Elsewhere they are skipped, saying why."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from taskyard.testing import cli, server_process, stop_server, web_process

try:
    from playwright.sync_api import expect
except ImportError:  # not installed: in CI that is a failure, elsewhere a skip
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("the panel's browser tests need playwright (pip install -e '.[dev]')",
                allow_module_level=True)

CHROMIUM = "/usr/bin/chromium"
#: The machine's network is closed: these flags keep chromium from trying it.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
#: Anything that waits on a server waits this long at most (ms): CI machines are busy.
WAIT_MS = 20_000
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts"
PY = sys.executable


def require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    reason = (f"the panel's browser tests need Debian's chromium at {CHROMIUM}"
              " (apt-get install chromium; python3 dev.py test installs it in CI)")
    if os.environ.get("CI") == "true":
        pytest.fail(reason + ": in CI they must run", pytrace=False)
    pytest.skip(reason)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without stray TASKYARD_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKYARD_")}
    env.update(extra)
    return env


class Site(NamedTuple):
    home: Path
    base: str  #: the panel's URL, without a trailing slash
    env: dict[str, str]

    def login_url(self) -> str:
        done = cli(self.home, "web", "login-url")
        assert done.returncode == 0, done.stderr
        url = done.stdout.decode().strip()
        assert url.startswith(self.base + "/login?ticket="), url
        return url


@contextmanager
def deployment(root: Path, *server_args: str, **env: str) -> Iterator[Site]:
    """A task server and its panel on a fresh home under ``root`` for the block."""
    home = root / "home"
    full_env = clean_env(**env)
    server = server_process(home, "--kill-grace", "1", *server_args, env=full_env)
    try:
        with web_process(home, env=full_env) as base:
            yield Site(home, base, full_env)
    finally:
        stop_server(server)


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless chromium for a module's tests (each test takes its own context)."""
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any, **options: Any) -> Any:
    options.setdefault("viewport", {"width": 1280, "height": 860})
    context = browser.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    return context


def log_in(site: Site, context: Any) -> Any:
    """A page of ``context`` logged in as an admin through a one-time login link (the
    link's page posts itself, and the panel answers with the task list)."""
    page = context.new_page()
    watch_csp(page)
    page.goto(site.login_url())
    page.wait_for_url(re.compile(r"/tasks$"))
    return page


def watch_csp(page: Any) -> None:
    """Collect Content-Security-Policy violations in ``window.__csp`` (the panel must
    cause none: no inline script or style anywhere), page after page."""
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation', function (e) {"
        " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });")


def csp_violations(page: Any) -> list[str]:
    return list(page.evaluate("window.__csp || []"))


def ticker(lines: int, every: float, *, progress_every: int = 0, start: int = 0) -> list[str]:
    """A command printing numbered green lines from ``start`` on (and a yellow one to
    stderr every 7th), reporting progress through ``taskyard progress`` every
    ``progress_every`` lines."""
    report = (f'[ $((i % {progress_every})) -eq 0 ] && {shlex.quote(PY)} -m taskyard progress'
              f' $i {lines} "chunk $i of {lines}"; ' if progress_every else "")
    script = (f"i={start}; while [ $i -lt {lines} ]; do i=$((i+1)); {report}"
              "printf '\\033[32mok\\033[0m   chunk %d \\033[2m(%d rows)\\033[0m\\n' $i $((i*137)); "
              "[ $((i % 7)) -eq 0 ] && printf '\\033[33mwarn\\033[0m slow shard %d\\n' $i >&2; "
              f"sleep {every}; done; echo done")
    return ["sh", "-c", script]


def shot(page: Any, name: str, **options: Any) -> Path:
    """A screenshot for CI's artifacts (.ci/artifacts/NAME.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide", **options)
    return path
