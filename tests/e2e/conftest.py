"""Fixtures the panel's browser tests share: each module starts its own ``site`` (a
server and a web process); these give it a browser and a Yard on its home."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from taskyard import Yard


@pytest.fixture(scope="module")
def browser(site: Any) -> Iterator[Any]:
    from .panelkit import chromium

    with chromium() as found:
        yield found


@pytest.fixture(scope="module")
def yard(site: Any) -> Iterator[Yard]:
    with Yard(site.home) as found:
        yield found
