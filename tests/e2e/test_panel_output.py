"""A task's output in the panel: only the end of a large stream is loaded, earlier
bytes come on demand by byte range, the range the output bound dropped is marked
where it was, and Download gives everything kept. The server here keeps 64 KiB of
head and 256 KiB of tail per stream."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskyard import Yard

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
)

HEAD, TAIL = 64 * 1024, 256 * 1024
LINE = 100  #: bytes per line of the big task: "line 0000042 xxx...x\n"
LINES = 30_000  #: 3 MB: most of it is dropped


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    with deployment(tmp_path_factory.mktemp("output"), "--slots", "4", "--output-tail-mib",
                    str(TAIL / 2**20), TASKYARD_OUTPUT_HEAD_MIB=str(HEAD / 2**20)) as found:
        yield found


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[Any]:
    with chromium() as browser:
        context = new_context(browser, accept_downloads=True)
        found = log_in(site, context)
        yield found
        assert csp_violations(found) == []
        context.close()


@pytest.fixture(scope="module")
def big(yard: Yard) -> int:
    """A finished task that wrote LINES numbered lines of LINE bytes to stdout."""
    code = (f"import sys\nfor i in range({LINES}):\n"
            f"    sys.stdout.write('line %07d ' % i + 'x' * {LINE - 14} + '\\n')\n")
    task = yard.submit([PY, "-c", code], name="big output")
    done = yard.wait(task.id, timeout=60)
    assert done is not None and done.status.value == "succeeded"
    return task.id


def line(i: int) -> str:
    return f"line {i:07d} "


def test_only_the_end_of_a_large_stream_is_loaded(site: Site, page: Any, big: int,
                                                  yard: Yard) -> None:
    # the bound keeps HEAD bytes and the TAIL last ones (in whole chunks: maybe more)
    dropped = yard.logs(big, offset=HEAD, limit=0).dropped
    assert dropped is not None and dropped[0] == HEAD and dropped[1] <= LINES * LINE - TAIL
    kept_from = -(-dropped[1] // LINE)  # the first whole line kept after the dropped range
    page.goto(f"{site.base}/tasks/{big}")
    output = page.locator("pre#output")
    expect(output.locator(".marker.end")).to_contain_text("end of output (succeeded)")
    expect(output).to_contain_text(line(LINES - 1))
    assert line(0) not in output.inner_text()
    shown = output.evaluate("p => p.textContent.length")
    assert shown < 80 * 1024, shown
    expect(page.locator("nav[aria-label=Stream] a[aria-current] .count")).to_have_text("2.9 MiB")
    bar = output.locator(".gap-bar")
    expect(bar).to_contain_text("earlier bytes not loaded")

    # earlier output, a chunk at a time, by byte range, until the dropped range
    first_shown = LINES - 64 * 1024 // LINE
    with page.expect_request(lambda r: "range" in r.headers) as asked:
        bar.get_by_role("button", name="Load earlier").click()
    assert re.fullmatch(r"bytes=\d+-\d+", asked.value.headers["range"])
    expect(output).to_contain_text(line(first_shown - 64 * 1024 // LINE + 10))
    for _ in range(10):
        if not bar.get_by_role("button", name="Load earlier").count():
            break
        bar.get_by_role("button", name="Load earlier").click()
        expect(bar.locator("button").first).to_be_enabled()
    expect(bar).to_contain_text(f"the output bound dropped bytes before byte {dropped[1]:,}")
    assert line(kept_from) in output.inner_text()
    assert line(kept_from - 2) not in output.inner_text()

    # the head, up to the dropped range, which is then marked exactly
    bar.get_by_role("button", name="Show the first bytes").click()
    expect(output).to_contain_text(line(0))
    expect(bar).to_contain_text("the output bound dropped bytes before byte")
    bar.get_by_role("button", name="Show the first bytes").click()  # reaches the dropped range
    expect(bar).to_have_count(0)
    marker = output.locator(".marker.dropped")
    expect(marker).to_have_count(1)
    expect(marker).to_contain_text(f"{dropped[1] - HEAD:,} bytes dropped by the output bound"
                                   f" (bytes 65,536–{dropped[1]:,})")
    text = output.inner_text()
    assert text.index(line(HEAD // LINE - 1)) < text.index("dropped by") < text.index(
        line(kept_from))
    assert text.count(line(LINES - 1)) == 1 and text.count(line(kept_from)) == 1
    assert output.evaluate("p => p.textContent.length") < HEAD + LINES * LINE - dropped[1] + 500


def test_download_has_every_kept_byte_and_says_what_was_dropped(site: Site, page: Any,
                                                                big: int, yard: Yard) -> None:
    page.goto(f"{site.base}/tasks/{big}")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download").click()
    download = waiting.value
    assert download.suggested_filename == f"task-{big}-1.stdout.txt"
    data = Path(download.path()).read_bytes()
    head = yard.logs(big, limit=HEAD).data
    assert data.startswith(head) and len(head) == HEAD
    note = re.search(rb"\n\xe2\x8b\xaf taskyard: bytes 65536-(\d+) \((\d+) bytes\) were dropped"
                     rb" by the output bound \xe2\x8b\xaf\n", data)
    assert note is not None
    tail = yard.logs(big, offset=int(note.group(1))).data
    assert data == head + note.group(0) + tail
    assert data.endswith(line(LINES - 1).encode() + b"x" * (LINE - 14) + b"\n")


def test_stderr_and_control_characters(site: Site, page: Any, yard: Yard) -> None:
    task = yard.submit(["sh", "-c", "printf 'out\\n'; printf '\\033[1;31merr\\033[0m \\033[4mu"
                        "\\033[0m\\rbell\\007 back\\010space\\n' >&2"], name="streams")
    yard.wait(task.id, timeout=30)
    page.goto(f"{site.base}/tasks/{task.id}")
    expect(page.locator("pre#output")).to_contain_text("out")
    page.locator("nav[aria-label=Stream]").get_by_role("link", name=re.compile("stderr")).click()
    expect(page).to_have_url(re.compile(r"stream=stderr"))
    output = page.locator("pre#output")
    expect(output.locator(".marker.end")).to_be_visible()
    expect(output.locator("span.fg-1.a-bold")).to_have_text("err")
    expect(output.locator("span.a-underline")).to_have_text("u")
    text = output.evaluate("p => p.textContent")
    assert "err u\nbell backspace\n" in text and "\x07" not in text and "\x1b" not in text
