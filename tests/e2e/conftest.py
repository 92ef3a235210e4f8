"""Fixtures for the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.cytube import FakeCytube
from tests.e2e.harness import BOT, BOT_PW


@pytest.fixture
async def cytube() -> AsyncIterator[FakeCytube]:
    async with FakeCytube("testchan") as fake:
        fake.add_account(BOT, BOT_PW, rank=2)
        fake.add_virtual_user("alice", rank=1)
        fake.add_virtual_user("bob", rank=1)
        yield fake
