"""Markers by folder, so `make unit` is a quick loop and `make test` runs everything.

unit: pure modules, no sockets or subprocesses · integration: real sockets against the fake
servers · e2e: the real processes under real supervisord.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.path)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
