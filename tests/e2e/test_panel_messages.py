"""A running task's messages in the panel follow it live: new ones appear without a
reload, as text (markup a task wrote stays inert), lines that were not JSON flagged,
the count kept and the bound's dropped messages counted. The server here keeps the
first 1,000 and the last 5 messages of an attempt."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from taskyard import Yard
from taskyard.testing import wait_for

from .panelkit import (
    PY,
    Site,
    chromium,
    csp_violations,
    deployment,
    expect,
    log_in,
    new_context,
    require_chromium,
    shot,
)

TAIL = 5
#: emits one message, then two at each line on its stdin: an HTML one and a line that
#: is not JSON; then 1,010 in one write (the bound drops 8 of them); then ends
EMITTER = textwrap.dedent("""
    import json, os, sys
    fd = int(os.environ["TASKYARD_MESSAGES_FD"])
    def emit(text):
        os.write(fd, text.encode())
    emit(json.dumps({"step": 1, "rows": [1, 2, 3]}) + "\\n")
    sys.stdin.readline()
    emit(json.dumps({"step": 2, "html": "<script>window.__pwned = 1</script>"
                     "<img src=x onerror='window.__pwned = 1'>", "done": False}) + "\\n")
    emit("plain <b>words</b> from the task\\n")
    sys.stdin.readline()
    emit("".join(json.dumps({"i": i}) + "\\n" for i in range(1010)))
    sys.stdin.readline()
""")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    with deployment(tmp_path_factory.mktemp("messages"), "--slots", "2",
                    TASKYARD_MESSAGES_TAIL=str(TAIL)) as found:
        yield found


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[Any]:
    with chromium() as browser:
        context = new_context(browser)
        found = log_in(site, context)
        yield found
        assert csp_violations(found) == []
        context.close()


def test_messages_follow_a_running_task_without_a_reload(site: Site, page: Any,
                                                         yard: Yard) -> None:
    task = yard.submit([PY, "-c", EMITTER], name="emitter", stdin_open=True)
    wait_for(lambda: yard.messages(task.id).total == 1, timeout=30, message="first message")
    page.goto(f"{site.base}/tasks/{task.id}")
    section = page.locator("#messages")
    items = section.locator(".messages-list li")
    expect(items).to_have_count(1)
    expect(section.locator("[data-count]")).to_have_text("1")
    page.evaluate("window.__loaded = 'once'")  # gone if the page reloads

    yard.send(task.id, b"go\n")
    expect(items).to_have_count(3)
    expect(section.locator("[data-count]")).to_have_text("3")
    assert page.evaluate("window.__loaded") == "once"
    html = items.nth(1).locator("pre")
    expect(html).to_contain_text("<script>window.__pwned = 1</script>")
    assert html.locator("script, img").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    expect(items.nth(2).locator(".hint")).to_have_text("text")  # not JSON: kept, flagged
    expect(items.nth(2).locator("pre")).to_contain_text('"text": "plain <b>words</b>')
    assert items.nth(2).locator("b").count() == 0
    path = shot(page, "panel-messages-live", full_page=True)
    shutil.copy(path, "/tmp/panel-messages-live.png")

    yard.send(task.id, b"go\n")  # 1,010 more: the list keeps the last 100
    expect(section.locator("[data-count]")).to_have_text("1,013")
    expect(items).to_have_count(100)
    expect(items.last.locator("pre")).to_contain_text('"i": 1009')
    expect(section.locator("[data-dropped-note]")).to_contain_text("8 dropped")
    expect(section.locator("[data-last-note]")).to_contain_text("The last 100")
    assert page.evaluate("window.__loaded") == "once"
    yard.send(task.id, b"", eof=True)
    done = yard.wait(task.id, timeout=60)
    assert done is not None and done.status.value == "succeeded"


def test_a_task_yet_to_emit_shows_its_first_message_live(site: Site, page: Any,
                                                         yard: Yard) -> None:
    task = yard.submit(["sh", "-c", 'read go; echo \'{"hello": "panel"}\' >&$TASKYARD_MESSAGES_FD;'
                        " read end"], name="quiet", stdin_open=True)
    wait_for(lambda: (t := yard.get(task.id)).status.value == "running" and t.attempt == 1,
             timeout=30, message="it runs")
    page.goto(f"{site.base}/tasks/{task.id}")
    section = page.locator("#messages")
    expect(section).to_be_hidden()  # none yet: no empty box
    yard.send(task.id, b"go\n")
    expect(section).to_be_visible()
    expect(section.locator(".messages-list li pre")).to_have_text('{\n  "hello": "panel"\n}')
    yard.send(task.id, b"", eof=True)
    assert yard.wait(task.id, timeout=60) is not None


def test_a_named_tracked_task_is_marked_tracked_in_the_list(site: Site, page: Any,
                                                            yard: Yard) -> None:
    """The list shows a task's name where it has one, its command otherwise: a named
    tracked task looked like any command task; it carries a `tracked` mark."""
    with yard.track(name="nightly-import") as rec:
        page.goto(f"{site.base}/tasks?name=nightly-import")
        row = page.locator(f"tr[data-href$='/tasks/{rec.id}']")
        expect(row.locator("td.name")).to_contain_text("nightly-import")
        expect(row.locator("td.name .kind")).to_have_text("tracked")
    command = yard.submit(["true"], name="nightly-command")
    page.goto(f"{site.base}/tasks?name=nightly-command")
    row = page.locator(f"tr[data-href$='/tasks/{command.id}']")
    expect(row.locator("td.name")).to_have_text("nightly-command")
    assert row.locator("td.name .kind").count() == 0
