"""The panel's Stats page in headless chromium: reached from the navigation, the
window switched by its links, the numbers of tasks that ran (one still running, its
memory sampled by the server), no Content-Security-Policy violation."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from taskyard import Yard
from taskyard.testing import wait_for

from .panelkit import (
    Site,
    csp_violations,
    deployment,
    expect,
    log_in,
    new_context,
    require_chromium,
    shot,
)

HOLD = "import time\nblock = bytearray(32 * 1024 * 1024)\ntime.sleep(600)\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    with deployment(tmp_path_factory.mktemp("panel-stats"), "--slots", "4") as found:
        yield found


def test_the_stats_page(site: Site, browser: Any, yard: Yard) -> None:
    for argv in (["true"], ["sh", "-c", "exit 2"]):
        yard.wait(yard.submit(argv, queue="reports").id, timeout=30)
    holder = yard.submit([sys.executable, "-c", HOLD], queue="imports")
    wait_for(lambda: yard.stats(queue="imports").total.memory.sampled, timeout=30,
             message="the holder's memory sampled")
    context = new_context(browser)
    try:
        page = log_in(site, context)
        page.get_by_role("link", name="Stats").click()
        page.wait_for_url(re.compile(r"/stats$"))
        expect(page.get_by_role("heading", name="Stats")).to_be_visible()
        body = page.locator("main")
        expect(body).to_contain_text("exit 1")
        expect(body).to_contain_text(f"task {holder.id}")
        expect(page.get_by_role("link", name="reports")).to_be_visible()
        expect(page.get_by_role("link", name="imports")).to_be_visible()
        page.get_by_role("link", name="10m", exact=True).click()
        page.wait_for_url(re.compile(r"/stats\?since=10m$"))
        expect(page.get_by_role("row", name=re.compile("^Submitted 3 · busiest"))).to_be_visible()
        shot(page, "panel-stats", full_page=True)
        assert csp_violations(page) == []
    finally:
        context.close()
        yard.kill(holder.id, "KILL")
        yard.wait(holder.id, timeout=30)

