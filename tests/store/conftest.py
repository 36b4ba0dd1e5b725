"""Fixtures of the store tests: an open store with one account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailcore.store import MaildirStore

ACC = "alice@example.org"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MaildirStore]:
    s = MaildirStore(tmp_path)
    await s.open()
    await s.create_account(ACC)
    yield s
    await s.close()
