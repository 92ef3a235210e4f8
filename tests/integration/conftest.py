"""Fixtures shared by the fake-server tests (each module defines its own ``fake`` server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.test_fake_cytube import Client


@pytest.fixture
async def clients(fake: object) -> AsyncIterator[list[Client]]:
    """Socket.io clients a test opened (``new_client``); closed when it ends, before the
    module's ``fake`` server stops (hence the dependency)."""
    made: list[Client] = []
    yield made
    for c in made:
        await c.close()
