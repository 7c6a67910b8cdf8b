"""The server's messages pipe buffer: lines to messages, non-JSON kept flagged, an
over-size line cut, blank lines skipped, and in memory only what the bound keeps."""

from __future__ import annotations

import json

from taskyard.messages import HEAD, MAX_BYTES
from taskyard.server.messages import MessageBuffer


def _values(buf: MessageBuffer) -> list[tuple[object, bool]]:
    (write,) = buf.take()
    return [(json.loads(body), raw) for body, raw in write.values]


def test_lines_split_across_reads_become_messages() -> None:
    buf = MessageBuffer(1, 1, 100)
    buf.feed(b'{"a": 1}\n[1,')
    assert buf.dirty and buf.read == 1
    buf.feed(b' 2]\n\nnot json\n  \n"last, no newline"')
    assert buf.read == 3
    buf.at_eof()
    assert _values(buf) == [({"a": 1}, False), ([1, 2], False), ({"text": "not json"}, True),
                            ("last, no newline", False)]
    assert not buf.dirty and buf.take() == [] and buf.pending == 0


def test_an_over_size_line_is_kept_cut_and_flagged() -> None:
    buf = MessageBuffer(1, 1, 100)
    for _ in range(3):
        buf.feed(b"x" * (MAX_BYTES // 2))
    buf.feed(b"\n1\n")
    assert buf.pending < 64 * 1024  # the rest of the line was never held
    ((cut, raw), (one, _)) = _values(buf)
    assert raw and isinstance(cut, dict) and cut["cut"] == 3 * (MAX_BYTES // 2)
    assert cut["text"] == "x" * 4096 and one == 1


def test_only_what_the_bound_keeps_is_held() -> None:
    buf = MessageBuffer(7, 2, 5)
    buf.feed(b"".join(b"%d\n" % i for i in range(HEAD + 100)))
    (write,) = buf.take()
    assert (write.first, write.gap_at, write.gap, write.tail) == (0, HEAD, 95, 5)
    assert [json.loads(b) for b, _ in write.values] == list(range(HEAD)) + list(
        range(HEAD + 95, HEAD + 100))
    buf.feed(b"x\n")
    (nxt,) = buf.take()
    assert nxt.first == HEAD + 100 and nxt.gap == 0
