"""Scaling the caller pool (rosey/cli/scale.py): the start/stop plan, the persisted count,
and the supervisord conversation (against a fake XML-RPC proxy, on a virtual clock)."""

from __future__ import annotations

import json
import xmlrpc.client
from pathlib import Path
from typing import Any

from rosey.cli import scale
from rosey.config import parse_config


def config(tmp_path: Path, count: int = 2) -> Any:
    raw = {"channel": "chan", "user": ["bot", ""], "callers": {"count": count, "max": 6},
           "paths": {"run_dir": "run"}}
    cfg = parse_config(raw, base_dir=tmp_path, env={})
    Path(cfg.paths.run_dir).mkdir()
    return cfg


def test_plan_touches_only_members_that_must_change() -> None:
    states = {0: "RUNNING", 1: "RUNNING", 2: "STOPPED", 3: "FATAL", 4: "STOPPING",
              5: "RUNNING"}
    assert scale.plan(states, 4) == ([2, 3], [5])  # 0, 1 keep running untouched
    assert scale.plan(states, 1) == ([], [1, 5])  # 4 is already stopping
    assert scale.plan(states, 6) == ([2, 3, 4], [])
    assert scale.plan({0: "RUNNING", 1: "STARTING"}, 2) == ([], [])


def test_count_persists_unless_the_config_changed_since(tmp_path: Path) -> None:
    cfg = config(tmp_path, count=2)
    assert scale.desired_count(cfg) == 2  # no file yet: callers.count
    scale.save_count(cfg, 5)
    state = Path(cfg.paths.run_dir) / "callers.scale"
    assert json.loads(state.read_text()) == {"count": 5, "config_count": 2}
    assert scale.desired_count(cfg) == 5
    # the operator edited callers.count after scaling: the newer decision wins
    edited = parse_config({"channel": "chan", "user": ["bot", ""],
                           "callers": {"count": 3, "max": 6}, "paths": {"run_dir": "run"}},
                          base_dir=tmp_path, env={})
    assert scale.desired_count(edited) == 3
    state.write_text("{not json")
    assert scale.desired_count(cfg) == 2


def test_count_file_is_replaced_atomically(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    scale.save_count(cfg, 3)
    path = Path(cfg.paths.run_dir) / "callers.scale"
    inode = path.stat().st_ino
    scale.save_count(cfg, 1)
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert scale.desired_count(cfg) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["callers.scale"]  # no temp left


class FakeSupervisor:
    """supervisord's process table; a stop takes ``drain`` virtual seconds."""

    def __init__(self, states: dict[int, str], clock: list[float], drain: float) -> None:
        self.states = states
        self.clock = clock
        self.drain = drain
        self.calls: list[tuple[str, str, bool]] = []
        self.stopping_until: dict[int, float] = {}
        self.supervisor = self

    def getAllProcessInfo(self) -> list[dict[str, Any]]:  # the RPC names, camelCase
        for n, until in list(self.stopping_until.items()):
            if self.clock[0] >= until:
                self.states[n] = "STOPPED"
                del self.stopping_until[n]
        infos = [{"group": "caller", "name": f"caller-{n}", "statename": s}
                 for n, s in self.states.items()]
        return [*infos, {"group": "router", "name": "router", "statename": "RUNNING"}]

    def stopProcess(self, name: str, wait: bool) -> bool:
        self.calls.append(("stop", name, wait))
        n = int(name.rsplit("-", 1)[1])
        self.states[n] = "STOPPING"
        self.stopping_until[n] = self.clock[0] + self.drain
        return True

    def startProcess(self, name: str, wait: bool) -> bool:
        self.calls.append(("start", name, wait))
        n = int(name.rsplit("-", 1)[1])
        if self.states[n] == "RUNNING":
            raise xmlrpc.client.Fault(60, "ALREADY_STARTED: " + name)
        self.states[n] = "RUNNING"
        return True


def test_scale_down_stops_in_parallel_and_waits_for_the_drain() -> None:
    now = [0.0]
    fake = FakeSupervisor({0: "RUNNING", 1: "RUNNING", 2: "RUNNING", 3: "RUNNING"}, now,
                          drain=2.0)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    report = scale.scale(fake, 1, wait=35, clock=lambda: now[0], sleep=sleep)

    # all three stops issued at once without waiting: they drain together in ~2 s, not 6
    assert fake.calls == [("stop", "caller:caller-1", False), ("stop", "caller:caller-2", False),
                          ("stop", "caller:caller-3", False)]
    assert report.stopped == [1, 2, 3] and report.started == [] and report.settled
    assert 2.0 <= now[0] <= 2.4
    assert report.states == {0: "RUNNING", 1: "STOPPED", 2: "STOPPED", 3: "STOPPED"}


def test_scale_up_starts_missing_members_and_reports_a_timeout() -> None:
    now = [0.0]
    fake = FakeSupervisor({0: "RUNNING", 1: "STOPPED", 2: "STOPPED"}, now, drain=100.0)
    report = scale.scale(fake, 2, wait=5, clock=lambda: now[0],
                        sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert fake.calls == [("start", "caller:caller-1", False)]
    assert report.settled and report.states[1] == "RUNNING"

    slow = FakeSupervisor({0: "RUNNING", 1: "RUNNING"}, now, drain=100.0)
    report = scale.scale(slow, 1, wait=5, clock=lambda: now[0],
                        sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert not report.settled and report.states[1] == "STOPPING"
