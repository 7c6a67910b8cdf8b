"""The panel against a hostile page and hostile tasks: a form on another origin that
posts to the panel with the operator's session cookie is refused (even with the right
CSRF token), a login from another site is refused, and a task that prints markup and
terminal escapes (or has them in its name, metadata and progress) changes nothing on
the pages that show it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from taskyard import Yard
from taskyard.testing import free_port, make_token, wait_for

from .panelkit import (
    PY,
    Site,
    csp_violations,
    deployment,
    expect,
    log_in,
    new_context,
    require_chromium,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    with deployment(tmp_path_factory.mktemp("security"), "--slots", "4") as found:
        yield found


@pytest.fixture
def page(site: Site, browser: Any) -> Iterator[Any]:
    context = new_context(browser)
    found = log_in(site, context)
    yield found
    context.close()


def evil_site(page: Any, host: str, html: str) -> str:
    """Serve ``html`` as http://HOST:PORT/prize (another origin) to ``page``."""
    url = f"http://{host}:{free_port()}/prize"
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html",
                                                body=html))
    return url


def running_task(yard: Yard) -> int:
    task = yard.submit(["sleep", "120"], name="victim")
    wait_for(lambda: yard.get(task.id).status.value == "running", timeout=20,
             message="the victim runs")
    return task.id


def test_a_cross_origin_form_post_is_refused(site: Site, page: Any, yard: Yard) -> None:
    victim = running_task(yard)
    page.goto(f"{site.base}/tasks/{victim}")
    csrf = page.locator("body").get_attribute("data-csrf")
    assert csrf
    action = f"{site.base}/tasks/{victim}/do/kill"
    # the same host on another port: another origin, the same site, so the browser
    # sends the SameSite=Strict cookie along; the panel must see where it came from
    evil = evil_site(page, "127.0.0.1", f"""<!doctype html><title>prize</title>
        <form method="post" action="{action}"><input type="hidden" name="csrf" value="guessed">
        <button>Claim your prize</button></form>
        <form method="post" action="{action}"><input type="hidden" name="csrf" value="{csrf}">
        <button>Claim it again</button></form>""")
    for button in ("Claim your prize", "Claim it again"):
        page.goto(evil)
        with page.expect_response(lambda r: r.url == action) as answered:
            page.get_by_role("button", name=button).click()
        answer = answered.value
        assert "taskyard_session=" in answer.request.all_headers().get("cookie", "")
        assert answer.status == 403, answer.text()
        assert "cross-site request refused" in answer.text()
    assert yard.get(victim).status.value == "running"

    # nor is a task submitted from there
    before = len(yard.list())
    page.goto(evil_site(page, "127.0.0.1", f"""<!doctype html><form method="post"
        action="{site.base}/tasks/new"><input type="hidden" name="csrf" value="{csrf}">
        <input type="hidden" name="command" value="touch /tmp/pwned"><button>Run</button>
        </form>"""))
    with page.expect_response(lambda r: r.url == f"{site.base}/tasks/new") as answered:
        page.get_by_role("button", name="Run").click()
    assert answered.value.status == 403 and len(yard.list()) == before

    # from another site the browser does not even send the cookie: the login page
    page.goto(evil_site(page, "localhost", f"""<!doctype html><form method="post"
        action="{action}"><input type="hidden" name="csrf" value="{csrf}">
        <button>Claim</button></form>"""))
    page.get_by_role("button", name="Claim").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    # a same-origin post without the CSRF token is refused too
    answer = page.request.post(action, form={"csrf": "not it"}, max_redirects=0)
    assert answer.status == 403 and "CSRF" in answer.text()
    assert yard.get(victim).status.value == "running"
    yard.kill(victim)


def test_a_login_from_another_site_is_refused(site: Site, browser: Any) -> None:
    secret = make_token(site.home, "admin", env=site.env)
    context = new_context(browser)
    page = context.new_page()
    page.goto(evil_site(page, "127.0.0.1", f"""<!doctype html><form method="post"
        action="{site.base}/login"><input type="hidden" name="token" value="{secret}">
        <button>Go</button></form>"""))
    with page.expect_response(lambda r: r.url == f"{site.base}/login") as answered:
        page.get_by_role("button", name="Go").click()
    assert answered.value.status == 403
    assert not [c for c in context.cookies() if c["name"] == "taskyard_session"]
    context.close()


HOSTILE_NAME = '<img src=x onerror="window.__xss=1">"><b>name</b>'
HOSTILE_OUT = ("<script>window.__xss=2</script>\n"
               "\x1b]0;pwned title\x07"
               "\x1b]8;;javascript:window.__xss=3\x07click me\x1b]8;;\x07\n"
               "\x1b[31mred <b>bold?</b>\x1b[0m \x1b[38;2;250;10;10mrgb\x1b[0m"
               " \x1b[38;5;42mindexed\x1b[0m\n"
               "\x1b[2J\x1b[H\x1b[1000D\x1b[?25l<style>body{display:none}</style>\n"
               "\"><svg onload=window.__xss=4></svg>'\n"
               "\x1b[999999999999999999999mhuge\x1b[m \x1b[38;5m\x1b[48;2mhalf\x1b[0m\n")
HOSTILE_ERR = "<iframe src=\"javascript:window.__xss=5\"></iframe>\n"


@pytest.fixture(scope="module")
def hostile(yard: Yard) -> int:
    code = (f"import subprocess, sys\n"
            f"subprocess.run([sys.executable, '-m', 'taskyard', 'progress', '1', '2',"
            f" '<b>step</b> \\x1b[31mred'], check=True)\n"
            f"sys.stdout.write({HOSTILE_OUT!r})\nsys.stderr.write({HOSTILE_ERR!r})\n")
    task = yard.submit([PY, "-c", code], name=HOSTILE_NAME, queue="<i>q</i>",
                       meta={"html": "<script>window.__xss=6</script>"})
    done = yard.wait(task.id, timeout=30)
    assert done is not None and done.status.value == "succeeded", done
    return task.id


def assert_inert(page: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.scripts.length") == 2  # htmx and panel.js
    for tag in ("main img", "main svg", "main iframe", "main style", "main b", "main i",
                "pre a", "[onerror]", "[onload]"):
        assert page.locator(tag).count() == 0, tag
    assert csp_violations(page) == []
    assert dialogs == []


def test_what_a_task_wrote_is_shown_inert(site: Site, page: Any, hostile: int) -> None:
    page.goto(f"{site.base}/tasks/{hostile}")
    output = page.locator("pre#output")
    expect(output.locator(".marker.end")).to_be_visible()
    assert page.title() == f"Task {hostile} · taskyard"
    text = output.evaluate("p => p.textContent")
    for literal in ("<script>window.__xss=2</script>", "click me", "red <b>bold?</b>",
                    "<style>body{display:none}</style>", "<svg onload=window.__xss=4></svg>'",
                    "huge", "half"):
        assert literal in text, (literal, text)
    assert "\x1b" not in text and "pwned" not in text and "javascript:" not in text
    expect(output.locator("span.fg-1")).to_have_text("red <b>bold?</b>")
    colours = output.locator("span").evaluate_all("s => s.map(e => e.style.color)")
    assert "rgb(250, 10, 10)" in colours
    expect(page.locator("#task-live h1")).to_contain_text(HOSTILE_NAME)
    expect(page.locator(".progress .msg")).to_have_text("<b>step</b> \\x1b[31mred")
    expect(page.locator("pre.json")).to_contain_text("<script>window.__xss=6</script>")
    expect(page.locator("#task-live dd").nth(1)).to_have_text("<i>q</i>")
    assert_inert(page)

    page.goto(f"{site.base}/tasks/{hostile}?stream=stderr")
    expect(page.locator("pre#output .marker.end")).to_be_visible()
    expect(page.locator("pre#output")).to_contain_text(HOSTILE_ERR.strip())
    assert_inert(page)


def test_the_lists_show_it_inert_too(site: Site, page: Any, hostile: int) -> None:
    page.goto(f"{site.base}/tasks")
    row = page.locator(f"tr[data-href$='/tasks/{hostile}']")
    expect(row.locator("td.name")).to_have_text(HOSTILE_NAME)
    expect(row.locator("td").nth(2)).to_have_text("<i>q</i>")
    assert_inert(page)
    page.goto(f"{site.base}/queues")
    expect(page.get_by_role("link", name="<i>q</i>", exact=True)).to_be_visible()
    assert_inert(page)
    # what the address says is shown as text too: filters and notes
    page.goto(f"{site.base}/tasks?q=%3Csvg%20onload%3Dwindow.__xss%3D7%3E"
              f"&note=%3Cimg%20src%3Dx%20onerror%3Dwindow.__xss%3D8%3E")
    expect(page.locator(".note")).to_have_text("<img src=x onerror=window.__xss=8>")
    expect(page.locator("input[type=search][name=q]")).to_have_value("<svg onload=window.__xss=7>")
    assert_inert(page)
