"""Fixtures of the IMAP server tests: a test CA and a running server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from tests.imap.serverkit import Running, running_server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def srv(tmp_path: Path, ca: trustme.CA) -> AsyncIterator[Running]:
    async with running_server(tmp_path, ca) as running:
        yield running
