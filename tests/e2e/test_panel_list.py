"""The task list on a store with a realistic mix (60+ tasks over several queues, tenants
and statuses, one running with progress and coloured output): screenshots for CI's
artifacts, status tabs with counts, filters kept in the address, cursor paging, live
refresh that rests while the tab is hidden, the keyboard, bulk actions previewed
first, times in the browser's zone, and dark mode."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

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
    ticker,
    watch_csp,
)

QUEUES = {"images": "resize thumbnails", "mail": "send digest", "etl": "import orders",
          "default": "clean up tmp"}
TENANTS = ("default", "acme", "globex")
QUICK = 56  #: tasks that end at once (1 in 9 fails)


class Store:
    running: int
    paused: int
    reports: list[int]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    with deployment(tmp_path_factory.mktemp("list"), "--slots", "8") as found:
        yield found


def job(site: Site, name: str, command: list[str]) -> str:
    """A script in a jobs directory beside the home: a task runs it as ./NAME."""
    jobs = site.home.parent / "jobs"
    jobs.mkdir(exist_ok=True)
    (jobs / name).write_text("#!/bin/sh\n" + command[-1] + "\n")
    (jobs / name).chmod(0o755)
    return str(jobs)


@pytest.fixture(scope="module")
def store(site: Site, yard: Yard) -> Store:
    """Fill the store: QUICK tasks that ended, three waiting behind a paused queue, two
    scheduled, one stopped, one paused, and one running (the newest) with progress."""
    found = Store()
    for name in TENANTS[1:]:
        yard.add_tenant(name)
    yard.pause_queue("reports")
    for i in range(QUICK):
        queue = list(QUEUES)[i % 4]
        fail = "; exit 3" if i % 9 == 4 else ""
        yard.submit(["sh", "-c", f"echo '{QUEUES[queue]} batch {i}'{fail}"],
                    name=f"{QUEUES[queue]} #{i}", queue=queue, tenant=TENANTS[i % 3],
                    meta={"customer": f"c{100 + i % 7}", "region": ["eu", "us"][i % 2]})
    found.reports = [yard.submit(["sh", "-c", "echo report"], name=f"monthly report {m}",
                                 queue="reports", meta={"customer": "c100"}).id
                     for m in ("2026-09", "2026-10", "2026-11")]
    yard.submit(["true"], name="nightly vacuum", queue="etl", delay=3600)
    yard.submit(["true"], name="rebuild search index", tenant="acme", delay=7200)
    stopped = yard.submit(["sleep", "60"], name="backfill 2019", queue="etl")
    found.paused = yard.submit(
        ["./resize-originals", "--size", "2048"], name="resize originals", queue="images",
        tenant="acme", cwd=job(site, "resize-originals",
                               ticker(400, 0.2, progress_every=1, start=250))).id
    found.running = yard.submit(
        ["./import-orders", "--month", "2026-11"], name="import orders 2026-11", queue="etl",
        meta={"customer": "c104", "region": "eu"},
        cwd=job(site, "import-orders", ticker(100, 0.05, progress_every=1))).id
    wait_for(lambda: (yard.get(found.paused).progress.done or 0) >= 252, timeout=20,
             message="the task to pause runs")
    yard.pause(found.paused)
    wait_for(lambda: yard.get(stopped.id).status.value == "running", timeout=20)
    yard.kill(stopped.id)
    wait_for(lambda: len(yard.list(status=["succeeded", "failed"])) == QUICK, timeout=30,
             message="the quick tasks ended")
    wait_for(lambda: (yard.get(found.running).progress.done or 0) >= 15, timeout=30,
             message="the running task is some way in")
    return found


@pytest.fixture(scope="module")
def session(site: Site, browser: Any) -> dict[str, Any]:
    """An admin session's cookies, for every context of the module."""
    context = new_context(browser)
    log_in(site, context).close()
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


@pytest.fixture
def context(browser: Any, session: dict[str, Any]) -> Iterator[Any]:
    found = new_context(browser, storage_state=session)
    yield found
    found.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    found = context.new_page()
    watch_csp(found)
    yield found
    assert csp_violations(found) == []


def row_ids(page: Any) -> list[int]:
    hrefs = page.locator("table.tasks tbody tr[data-href]").evaluate_all(
        "rows => rows.map(r => r.dataset.href)")
    return [int(h.rsplit("/", 1)[1]) for h in hrefs]


def settled(page: Any, store: Store) -> None:
    """Wait until the running task's row shows progress and its output is colourful."""
    expect(page.locator(f"tr[data-href$='/tasks/{store.running}'] progress")).to_be_visible()


def test_screenshots_of_the_list_and_a_task(site: Site, browser: Any, session: dict[str, Any],
                                            store: Store) -> None:
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        context = new_context(browser, storage_state=session, color_scheme=scheme,
                              viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(site.base + "/tasks")
        settled(page, store)
        expect(page.locator("nav[aria-label=Status] a[aria-current]")).to_contain_text("All")
        shot(page, f"panel-tasks{suffix}")
        page.goto(f"{site.base}/tasks/{store.running}")
        output = page.locator("pre#output")
        expect(output.locator("span.fg-2").first).to_be_visible()
        expect(page.locator("#task-live progress")).to_be_visible()
        expect(output).to_contain_text("chunk 15 (")
        shot(page, f"panel-task{suffix}", full_page=True)
        context.close()


def test_status_tabs_count_and_filter(site: Site, page: Any, yard: Yard, store: Store) -> None:
    page.goto(site.base + "/tasks")
    tabs = page.locator("nav[aria-label=Status]")
    counts = {s: len(yard.list(status=s)) for s in ("scheduled", "queued", "running",
                                                    "paused", "succeeded", "failed", "stopped")}
    assert counts["failed"] == 6 and counts["queued"] == 3 and counts["paused"] == 1
    for status, n in counts.items():
        expect(tabs.locator(f"a.tab-{status} .count")).to_have_text(f"{n:,}")
    expect(tabs.locator("a").first.locator(".count")).to_have_text(str(sum(counts.values())))
    tabs.locator("a.tab-failed").click()
    expect(page).to_have_url(re.compile(r"/tasks\?status=failed$"))
    badges = page.locator("table.tasks tbody .badge")
    expect(badges).to_have_count(counts["failed"])
    assert set(badges.all_inner_texts()) == {"failed"}
    expect(page.locator("table.tasks tbody .reason").first).to_have_text("exit 3")


def test_every_filter_is_in_the_address(site: Site, page: Any, context: Any,
                                        store: Store) -> None:
    page.goto(site.base + "/tasks")
    page.fill("form.filters input[name=queue]", "mail")
    page.fill("form.filters input[name=meta]", "customer:c101 region:us")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(
        r"/tasks\?queue=mail&meta\.customer=c101&meta\.region=us$"))
    names = page.locator("table.tasks td.name")
    expect(names).to_have_text(["send digest #29", "send digest #1"])
    # a tab keeps the filter; the address alone gives the same page
    page.locator("nav[aria-label=Status] a.tab-succeeded").click()
    expect(page).to_have_url(re.compile(r"status=succeeded"))
    expect(page).to_have_url(re.compile(r"queue=mail"))
    expect(names).to_have_count(2)
    url = page.url
    other = context.new_page()
    other.goto(url)
    assert row_ids(other) == row_ids(page) and row_ids(page)
    expect(other.locator("form.filters input[name=meta]")).to_have_value("customer:c101 region:us")
    expect(other.locator("form.filters input[name=queue]")).to_have_value("mail")

    for query, expected in (("tenant=globex&name=send+digest+%2341", ["send digest #41"]),
                            ("q=digest+%2349", ["send digest #49"]),
                            ("meta.customer=c104&queue=etl", ["import orders 2026-11",
                                                             "import orders #46",
                                                             "import orders #18"]),
                            ("q=import-orders", ["import orders 2026-11"])):  # its argv
        page.goto(f"{site.base}/tasks?{query}")
        expect(names).to_have_text(expected)
    # a value with a space, quoted as in a shell, and shown so again
    page.goto(site.base + "/tasks")
    page.fill("form.filters input[name=meta]", "customer:'c104' note:'two words'")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"meta\.customer=c104&meta\.note=two\+words$"))
    expect(page.locator("td.empty")).to_be_visible()
    expect(page.locator("form.filters input[name=meta]")).to_have_value(
        "customer:c104 'note:two words'")
    page.get_by_role("link", name="Clear").click()
    expect(page).to_have_url(re.compile(r"/tasks$"))


def test_cursor_paging(site: Site, page: Any, yard: Yard, store: Store) -> None:
    total = len(yard.list())
    assert total > 60
    page.goto(site.base + "/tasks")
    first = row_ids(page)
    assert len(first) == 50 and first == sorted(first, reverse=True)
    page.get_by_role("link", name="Older »").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(page.locator("table.tasks tbody tr[data-href]")).to_have_count(total - 50)
    second = row_ids(page)
    assert max(second) < min(first) and len(set(first + second)) == total
    expect(page.get_by_role("link", name="Older »")).to_have_count(0)
    page.get_by_role("link", name="« Newest").click()
    expect(page).to_have_url(re.compile(r"/tasks$"))
    assert row_ids(page) == first


def test_live_refresh_rests_while_the_tab_is_hidden(site: Site, page: Any,
                                                    yard: Yard) -> None:
    page.goto(site.base + "/tasks?queue=live")
    expect(page.locator("td.empty")).to_be_visible()
    task = yard.submit(["true"], name="appears by itself", queue="live")
    expect(page.locator("td.name")).to_have_text(["appears by itself"])
    expect(page.locator("td .badge")).to_have_text(["succeeded"])

    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "fragment=live" in r.url else None)
    page.evaluate("""() => {
        window.__skipped = 0;
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
                                                            get: () => 'hidden'});
        document.addEventListener('htmx:beforeRequest', e => {
            if (e.defaultPrevented) window.__skipped += 1; });
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    asked.clear()
    hidden = yard.submit(["true"], name="submitted while hidden", queue="live")
    page.wait_for_function("() => window.__skipped >= 1")  # a refresh was due, not asked
    assert asked == []
    expect(page.locator("td.name")).to_have_count(1)

    with page.expect_request(lambda r: "fragment=live" in r.url):
        page.evaluate("""() => {
            delete document.hidden; delete document.visibilityState;
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
    expect(page.locator("td.name")).to_have_text(["submitted while hidden",
                                                  "appears by itself"])
    assert yard.get(hidden.id).id > task.id


def test_the_keyboard(site: Site, page: Any, store: Store) -> None:
    page.goto(site.base + "/tasks")
    ids = row_ids(page)
    page.keyboard.press("/")
    expect(page.locator("input[data-filter-focus]")).to_be_focused()
    page.keyboard.type("j")  # typed into the box, not a move
    expect(page.locator("input[data-filter-focus]")).to_have_value("j")
    page.keyboard.press("Escape")
    expect(page.locator("input[data-filter-focus]")).not_to_be_focused()
    selected = page.locator("tr.selected")
    page.keyboard.press("j")
    expect(selected).to_have_attribute("data-href", f"/tasks/{ids[0]}")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(selected).to_have_attribute("data-href", f"/tasks/{ids[2]}")
    page.keyboard.press("k")
    expect(selected).to_have_attribute("data-href", f"/tasks/{ids[1]}")
    page.keyboard.press("?")
    help_box = page.locator("dialog#keys-help")
    expect(help_box).to_be_visible()
    expect(help_box).to_contain_text("focus the filter")
    expect(help_box).to_contain_text("next / previous task")
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/tasks/{ids[1]}$"))
    page.keyboard.press("g")
    page.keyboard.press("t")
    expect(page).to_have_url(re.compile(r"/tasks$"))


def test_bulk_actions_preview_first(site: Site, page: Any, yard: Yard, store: Store) -> None:
    page.goto(site.base + "/tasks?queue=reports&meta.customer=c100")
    expect(page.locator("td.name")).to_have_count(3)
    page.locator("details.bulk summary").click()
    page.select_option("details.bulk select[name=action]", "kill")
    page.locator("details.bulk").get_by_role("button", name="Preview").click()
    expect(page.locator("h1")).to_have_text("Kill 3 task(s)?")
    links = page.locator("p.ids a")
    expect(links).to_have_text([f"#{i}" for i in sorted(store.reports, reverse=True)]
                               if links.first.inner_text() == f"#{max(store.reports)}"
                               else [f"#{i}" for i in sorted(store.reports)])
    assert {yard.get(i).status.value for i in store.reports} == {"queued"}  # a dry run

    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.get_by_role("button", name="Kill exactly these 3").click()
    expect(page.locator("h1")).to_have_text("Kill: 3 of 3 done")
    assert asked == ["Kill 3 task(s)?"]
    assert {yard.get(i).status.value for i in store.reports} == {"stopped"}


def test_times_are_in_the_browsers_zone_with_utc_on_hover(
        site: Site, browser: Any, session: dict[str, Any], store: Store) -> None:
    zone = "Asia/Kolkata"  # +05:30: no test machine's zone by accident
    context = new_context(browser, storage_state=session, timezone_id=zone)
    page = context.new_page()
    page.goto(f"{site.base}/tasks/{store.running}")
    times = page.locator(".facts time")
    expect(times.first).not_to_have_text(re.compile("UTC"))
    today = datetime.now(ZoneInfo(zone)).date()
    for item in times.all():
        stamp = datetime.fromisoformat(item.get_attribute("datetime").replace("Z", "+00:00"))
        local = stamp.astimezone(ZoneInfo(zone))
        expected = local.strftime("%H:%M:%S")
        if local.date() != today:
            expected = local.strftime("%Y-%m-%d ") + expected
        expect(item).to_have_text(expected)
        assert item.get_attribute("title") == stamp.strftime("%Y-%m-%d %H:%M:%S UTC")
    context.close()


def test_dark_mode_follows_the_system(site: Site, browser: Any, session: dict[str, Any],
                                      store: Store) -> None:
    colours = {}
    for scheme in ("light", "dark"):
        context = new_context(browser, storage_state=session, color_scheme=scheme)
        page = context.new_page()
        page.goto(site.base + "/tasks")
        colours[scheme] = page.evaluate(
            "[getComputedStyle(document.body).backgroundColor,"
            " getComputedStyle(document.body).color]")
        context.close()
    assert colours["light"] == ["rgb(247, 247, 245)", "rgb(29, 29, 31)"]
    assert colours["dark"] == ["rgb(18, 19, 22)", "rgb(230, 230, 233)"]
