"""The panel in headless chromium, as an operator uses it: log in through a one-time
link, submit a command from the New task form, watch its output and progress live,
pause, resume and kill it (destructive controls ask first), read its events, and
see why a task behind a paused queue does not run. Function tasks are asked to stop,
get custom signals and live config from the page. A viewer gets no controls."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskyard import Yard
from taskyard.testing import make_token, wait_for

from .panelkit import (
    Site,
    csp_violations,
    deployment,
    expect,
    log_in,
    new_context,
    require_chromium,
    ticker,
    watch_csp,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    with deployment(tmp_path_factory.mktemp("panel"), "--slots", "6", TASKYARD_IMPORTS="ty_tasks",
                    TASKYARD_IMPORT_PATH=str(FUNCTIONS)) as found:
        yield found


@pytest.fixture(scope="module")
def admin(site: Site, browser: Any) -> Iterator[Any]:
    """A browser context holding an admin session (shared by the module's tests)."""
    context = new_context(browser)
    log_in(site, context).close()
    yield context
    context.close()


@pytest.fixture
def page(admin: Any) -> Iterator[Any]:
    found = admin.new_page()
    watch_csp(found)
    yield found
    assert csp_violations(found) == []
    found.close()


FUNCTIONS = Path(__file__).parent.parent / "integration" / "tasks_pkg"


def task_id_of(page: Any) -> int:
    match = re.search(r"/tasks/(\d+)$", page.url)
    assert match, page.url
    return int(match.group(1))


def test_a_login_link_opens_an_admin_session_once(site: Site, browser: Any) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(site.base + "/tasks")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("input[name=token]")).to_be_visible()

    url = site.login_url()
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/tasks$"))
    expect(page.locator(".whoami")).to_contain_text("admin")
    cookie = next(c for c in context.cookies() if c["name"] == "taskyard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    again = new_context(browser)
    second = again.new_page()
    second.goto(url)
    expect(second.locator("[role=alert]")).to_contain_text("used already")
    again.close()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(site.base + "/tasks")
    expect(page).to_have_url(re.compile(r"/login$"))
    context.close()


def test_submit_a_command_watch_it_pause_resume_and_kill_it(site: Site, page: Any,
                                                             yard: Yard) -> None:
    page.goto(site.base + "/tasks")
    page.get_by_role("link", name="New task").click()
    expect(page).to_have_url(re.compile(r"/tasks/new$"))
    argv = ticker(3000, 0.05, progress_every=4)
    page.fill("input[name=command]", shlex.join(argv))
    page.fill("input[name=name]", "web ticker")
    page.fill("input[name=queue]", "web")
    page.fill("input[name=priority]", "5")
    page.fill("input[name=timeout]", "10m")
    page.fill("input[name=meta]", '{"customer": "c42"}')
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/tasks/\d+$"))
    task = yard.get(task_id_of(page))
    assert (task.argv, task.name, task.queue, task.priority, task.timeout, task.meta) == (
        tuple(argv), "web ticker", "web", 5, 600.0, {"customer": "c42"})
    expect(page.locator(".facts dd.mono").first).to_have_text(shlex.join(argv))

    # live output, ANSI colours rendered, and a progress bar that moves
    output = page.locator("pre#output")
    expect(output).to_contain_text("chunk 3 (411 rows)")
    expect(output.locator("span.fg-2").first).to_have_text("ok")
    expect(output.locator("span.a-dim").first).to_have_text(re.compile(r"\(\d+ rows\)"))
    bar = page.locator("#task-live progress")
    expect(bar).to_be_visible()
    seen = float(bar.evaluate("p => p.value"))
    page.wait_for_function(
        "v => parseFloat(document.querySelector('#task-live progress').value) > v", arg=seen)
    badge = page.locator("#task-live h1 .badge")
    expect(badge).to_have_text("running")

    # the pane follows the output while it is scrolled to the end; scrolled up, it stays
    follow = page.locator("input[data-follow]")
    expect(follow).to_be_checked()
    page.wait_for_function("""() => { const p = document.querySelector('pre#output');
        return p.scrollHeight > p.clientHeight + 200
            && p.scrollHeight - p.scrollTop - p.clientHeight < 40; }""")
    output.evaluate("p => { p.scrollTop = 0; }")
    expect(follow).not_to_be_checked()
    grown = output.evaluate("p => p.scrollHeight")
    page.wait_for_function("h => document.querySelector('pre#output').scrollHeight > h + 100",
                           arg=grown)
    assert output.evaluate("p => p.scrollTop") == 0
    follow.check()
    page.wait_for_function("""() => { const p = document.querySelector('pre#output');
        return p.scrollHeight - p.scrollTop - p.clientHeight < 40; }""")

    page.locator("button[data-verb=pause]").click()
    expect(badge).to_have_text("paused")
    expect(page.locator("#events li.to-paused")).to_have_count(1)
    expect(page.locator("button[data-verb=resume]")).to_be_visible()
    expect(page.locator("button[data-verb=pause]")).to_have_count(0)

    page.locator("button[data-verb=resume]").click()
    expect(badge).to_have_text("running")
    expect(page.locator("#events li.to-running")).to_have_count(2)

    # Kill asks first: declined, nothing is sent
    asked: list[str] = []
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    def decline(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.locator("button[data-verb=kill]").click()
    assert asked == [f"Kill task {task.id}?"]
    assert posts == [] and yard.get(task.id).status.value == "running"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("button[data-verb=kill]").click()
    expect(badge).to_have_text("stopped")
    expect(page.locator("#task-live h1 .reason")).to_have_text("killed")
    expect(page.locator("#events li.to-stopped")).to_have_count(1)
    expect(output.locator(".marker.end")).to_contain_text("end of output (stopped)")
    assert [p.split("/do/")[-1] for p in posts] == ["kill"]
    # the events, in order
    expect(page.locator("#events li")).to_have_count(5)
    steps = page.locator("#events li").evaluate_all("items => items.map(i => i.className)")
    assert steps == ["to-queued", "to-running", "to-paused", "to-running", "to-stopped"]


def test_the_new_task_form_says_what_is_wrong_and_keeps_the_values(site: Site,
                                                                    page: Any) -> None:
    page.goto(site.base + "/tasks/new")
    cases = [("echo 'unclosed", {}, "command", "cannot be split"),
             ("   ", {}, "command", "give a command"),
             ("echo hi", {"priority": "high"}, "priority", "whole number"),
             ("echo hi", {"timeout": "soon"}, "timeout", "duration"),
             ("echo hi", {"cwd": "relative/dir"}, "cwd", "absolute"),
             ("echo hi", {"meta": "[1, 2]"}, "meta", "JSON object")]
    for command, fields, field, words in cases:
        page.fill("input[name=command]", command)
        for name in ("priority", "timeout", "cwd", "meta"):
            page.fill(f"input[name={name}]", fields.get(name, "0" if name == "priority" else ""))
        page.fill("input[name=name]", "kept <b>name</b>")
        page.get_by_role("button", name="Submit").click()
        error = page.locator("[role=alert]")
        expect(error).to_contain_text(words)
        assert error.get_attribute("data-field") == field
        expect(page.locator(f"label.invalid input[name={field}]")).to_have_count(1)
        expect(page.locator("input[name=name]")).to_have_value("kept <b>name</b>")
        expect(page.locator("input[name=command]")).to_have_value(command)
    expect(page).to_have_url(re.compile(r"/tasks/new$"))


def test_why_a_task_behind_a_paused_queue_is_not_running(site: Site, page: Any,
                                                         yard: Yard) -> None:
    yard.pause_queue("held")
    task = yard.submit(["sh", "-c", "echo released"], queue="held", name="held back")
    page.goto(f"{site.base}/tasks/{task.id}")
    why = page.locator(".why")
    expect(why.locator("h2")).to_have_text(re.compile("why is it not running", re.I))
    expect(why.locator("li[data-code=queue_paused]")).to_have_text("queue 'held' is paused")
    expect(page.locator("[data-no-output]")).to_be_visible()

    page.goto(site.base + "/queues")
    row = page.locator("tr", has=page.get_by_role("link", name="held", exact=True))
    expect(row.locator(".badge")).to_have_text("paused")
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".badge")).to_have_text("active")

    # the task's page follows it live: it starts, and the page shows its output
    page.goto(f"{site.base}/tasks/{task.id}")
    expect(page.locator("#task-live h1 .badge")).to_have_text("succeeded")
    expect(page.locator(".why")).to_have_count(0)
    expect(page.locator("pre#output")).to_contain_text("released")


def test_a_waiting_task_page_shows_the_output_once_it_starts(site: Site, page: Any,
                                                             yard: Yard) -> None:
    yard.pause_queue("later")
    task = yard.submit(["sh", "-c", "echo started late"], queue="later")
    page.goto(f"{site.base}/tasks/{task.id}")
    expect(page.locator("[data-no-output]")).to_be_visible()
    yard.resume_queue("later")
    expect(page.locator("pre#output")).to_contain_text("started late")
    expect(page.locator("#events li.to-succeeded")).to_have_count(1)


def test_restart_and_delete_a_finished_task(site: Site, page: Any, yard: Yard) -> None:
    task = yard.submit(["sh", "-c", 'echo "attempt $TASKYARD_ATTEMPT"'], name="twice")
    yard.wait(task.id, timeout=20)
    page.goto(f"{site.base}/tasks/{task.id}")
    expect(page.locator("pre#output")).to_contain_text("attempt 1")
    page.locator("button[data-verb=restart]").click()
    expect(page.locator("#task-live h1 .badge")).to_have_text("succeeded")
    expect(page.locator("nav[aria-label=Attempt] a")).to_have_count(2)
    expect(page.locator("pre#output")).to_contain_text("attempt 2")
    page.get_by_role("link", name="attempt 1").click()
    expect(page.locator("pre#output")).to_contain_text("attempt 1")

    # Copy: the New task form filled in with its command and settings
    page.get_by_role("link", name="Copy…").click()
    expect(page.locator("input[name=command]")).to_have_value(
        """sh -c 'echo "attempt $TASKYARD_ATTEMPT"'""")
    expect(page.locator("input[name=name]")).to_have_value("twice")
    page.go_back()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("button[data-verb=delete]").click()
    expect(page).to_have_url(re.compile(r"/tasks\?note="))
    expect(page.locator(".note")).to_have_text(f"task {task.id} deleted")
    response = page.goto(f"{site.base}/tasks/{task.id}")
    assert response is not None and response.status == 404


def test_a_viewer_sees_everything_and_can_change_nothing(site: Site, browser: Any,
                                                         yard: Yard) -> None:
    task = yard.submit(["sleep", "30"], name="watched")
    secret = make_token(site.home, "viewer", env=site.env)
    context = new_context(browser)
    page = context.new_page()
    page.goto(site.base + "/login")
    page.fill("input[name=token]", secret)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/tasks$"))
    expect(page.locator(".whoami")).to_contain_text("viewer")
    expect(page.get_by_role("link", name="New task")).to_have_count(0)
    expect(page.locator("details.bulk")).to_have_count(0)
    page.goto(f"{site.base}/tasks/{task.id}")
    expect(page.locator("#task-live h1 .badge")).to_have_text("running")
    expect(page.locator(".controls button")).to_have_count(0)

    # the server says no too, even with the session's own CSRF token
    csrf = page.locator("body").get_attribute("data-csrf")
    answer = page.request.post(f"{site.base}/tasks/{task.id}/do/kill", form={"csrf": csrf},
                               max_redirects=0)
    assert answer.status == 403, answer.text()
    assert page.request.get(f"{site.base}/tasks/new", max_redirects=0).status == 403
    assert yard.get(task.id).status.value == "running"
    yard.kill(task.id)
    context.close()


def test_function_tasks_are_steered_from_their_page(site: Site, page: Any, yard: Yard) -> None:
    accept = lambda dialog: dialog.accept()  # noqa: E731
    badge = page.locator("#task-live h1 .badge")
    stopper = yard.submit_function("graceful", name="stopper")
    page.goto(f"{site.base}/tasks/{stopper.id}")
    expect(page.locator(".facts dd.mono").first).to_have_text("graceful()")
    page.once("dialog", accept)
    page.locator("button[data-verb=graceful]").click()
    expect(badge).to_have_text("succeeded")  # the page reloads once it ended
    expect(page.locator("#result")).to_contain_text('"stopped_after":')

    waiter = yard.submit_function("wait_signal", name="waiter")
    page.goto(f"{site.base}/tasks/{waiter.id}")
    expect(badge).to_have_text("running")
    page.fill("form.signal input[name=name]", "go")
    page.fill("form.signal input[name=data]", '{"x": [1, "<b>"]}')
    page.locator("form.signal").get_by_role("button", name="Send").click()
    expect(badge).to_have_text("succeeded")
    expect(page.locator("#result")).to_contain_text('"<b>"')
    expect(page.get_by_role("cell", name="go", exact=True)).to_be_visible()

    tuned = yard.submit_function("wait_config", name="tuned")
    page.goto(f"{site.base}/tasks/{tuned.id}")
    expect(page.locator(".progress .msg")).to_have_text("waiting for speed 2")
    page.fill("form.config textarea[name=patch] >> nth=-1", '{"speed": 2}')
    page.locator("form[action$=do\\/config]").get_by_role("button", name="Apply").click()
    expect(badge).to_have_text("succeeded")
    assert yard.get(tuned.id).config == {"speed": 2}

    # the metadata of any task, and a chosen signal for a command's processes
    page.locator("summary", has_text="Change the metadata").click()
    page.fill("form[action$=do\\/meta] textarea", '{"owner": "ops", "speed": null}')
    page.locator("form[action$=do\\/meta]").get_by_role("button", name="Apply").click()
    expect(page.locator("#meta")).to_contain_text('"owner": "ops"')
    sleeper = yard.submit(["sleep", "60"], name="interrupted")
    wait_for(lambda: yard.get(sleeper.id).status.value == "running", timeout=20)
    page.goto(f"{site.base}/tasks/{sleeper.id}")
    page.locator("summary", has_text="Send a signal").click()
    page.select_option("select[name=signal]", "INT")
    page.once("dialog", accept)
    page.locator("form[action$=do\\/kill].inline").get_by_role("button", name="Send").click()
    expect(badge).to_have_text("stopped")
    expect(page.locator(".facts")).to_contain_text("Signal")
    assert yard.get(sleeper.id).signal == 2


def test_a_tenants_operator_sees_and_submits_only_its_own(site: Site, browser: Any,
                                                         yard: Yard) -> None:
    yard.add_tenant("acme")
    own = yard.submit(["true"], name="acme's", tenant="acme")
    other = yard.submit(["true"], name="not acme's")
    secret = make_token(site.home, "operator", "--tenant", "acme", env=site.env)
    context = new_context(browser)
    page = context.new_page()
    page.goto(site.base + "/login")
    page.fill("input[name=token]", secret)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".whoami")).to_contain_text("tenant acme")
    expect(page.locator("table.tasks td.name")).to_have_text(["acme's"])
    expect(page.locator("table.tasks th", has_text="Tenant")).to_have_count(0)
    assert page.goto(f"{site.base}/tasks/{other.id}").status == 404
    assert page.goto(f"{site.base}/tasks/{own.id}").status == 200
    page.goto(site.base + "/tasks/new")
    expect(page.locator("input[name=tenant]")).to_have_count(0)
    page.fill("input[name=command]", "echo mine")
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/tasks/\d+$"))
    assert yard.get(task_id_of(page)).tenant == "acme"
    context.close()


def test_a_task_stopped_by_its_memory_limit_shows_which(site: Site, page: Any) -> None:
    with Yard(site.home) as y:
        task = y.submit([sys.executable, "-c", "b = bytearray(1 << 30)"],
                        limits={"memory": "256M", "files": 64})
        assert y.wait(task.id, timeout=60) is not None
    page.goto(f"{site.base}/tasks/{task.id}")
    expect(page.locator("h1 .reason")).to_have_text("limit")
    expect(page.locator("dd", has_text="memory 256M, files 64")).to_be_visible()
    expect(page.locator("dd", has_text="memory limit 256M").first).to_be_visible()
