"""Tiers, so `make unit` is a quick loop and `make test` runs everything.

A test's tier is its folder's (unit, integration, e2e) unless it is marked with another tier
(`@pytest.mark.integration` on a test in tests/unit, or `pytestmark` on a module).

unit: one process; no subprocesses and no network sockets.  This is checked, not hoped: a
unit-tier test that starts a process or binds/connects an IP socket fails and names the call,
so a slow test cannot drift back into the quick loop.
integration: crosses a process or network boundary: the fake CyTube and model servers over
real sockets, the `rosey` CLI in a subprocess, promtool, git, make, pip.
e2e: the real processes under real supervisord.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TIERS = ("unit", "integration", "e2e")
NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        tier = Path(str(item.path)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


class TierViolation(Exception):
    """A unit-tier test left its process; raised where it happened and reported at teardown."""


@pytest.fixture(autouse=True)
def _unit_stays_in_process(request: pytest.FixtureRequest,
                           monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    seen: list[str] = []

    def refuse(what: str) -> TierViolation:
        seen.append(what)
        return TierViolation(f"unit tests stay in one process, but this one calls {what}: "
                             "make it in-process or mark it @pytest.mark.integration")

    bind, connect = socket.socket.bind, socket.socket.connect

    def guarded_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        raise refuse(f"subprocess {str(args)[:80]}")

    def guarded_bind(self: socket.socket, address: Any) -> None:
        if self.family in NETWORK_FAMILIES:
            raise refuse(f"socket.bind({address!r})")
        bind(self, address)

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in NETWORK_FAMILIES:
            raise refuse(f"socket.connect({address!r})")
        connect(self, address)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_popen)
    monkeypatch.setattr(socket.socket, "bind", guarded_bind)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield
    # The code under test may have swallowed the exception; the test still fails.
    if seen:
        pytest.fail(f"unit tier left its process: {seen[0]} (mark it integration)")
