"""Which model host runs a request: per-endpoint capacity, load, latency and breaker.

``Endpoints`` is pure: ``now`` is injected and it does no I/O; ``export`` copies its state
into the endpoint gauges.  The router schedules endpoints because only it sees the whole
caller pool: an endpoint's capacity is shared by every caller process, not per process.

- ``pick`` gives a request the endpoint of its provider that is up, has free capacity and
  the least outstanding work (in flight / capacity; ties by latency, then config order).
  A host that just failed, not yet taken out, comes last and gets one request at a time.
  Endpoints the request already failed on are avoided.  When every endpoint of the provider
  is down (or was tried), it still gets one with free capacity, without a hand-back: the
  caller then runs its usual retries and ``providers.fallbacks``, as with one endpoint.
- A breaker per endpoint: ``failures`` (at most its capacity) endpoint failures in a row
  (connection refused, HTTP 5xx, timeout; never a model's own error), or ``slow_streak``
  answers in a row slower than ``slow_factor`` × the fastest up peer's average, take it out
  ("down").  After ``cooloff`` one request probes it: success brings it back, failure takes
  it out again.
- A provider the scheduler does not know (no endpoints given) is not scheduled: ``pick``
  returns the ``UNSCHEDULED`` choice and the caller uses its configured default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rosey import metrics
from rosey.config import Config, channel_configs, provider_endpoints

EWMA_ALPHA = 0.3
SLOW_FLOOR = 1.0  # s: an answer faster than this is never "slow"


class EndpointSpec(Protocol):
    """What the config says of an endpoint (``rosey.config_schema.Endpoint``)."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def capacity(self) -> int: ...


@dataclass(slots=True)
class EndpointState:
    provider: str
    name: str
    url: str
    capacity: int
    in_flight: int = 0
    latency: float = 0.0  # EWMA of answer latency, s; 0 until the first answer
    failures: int = 0  # endpoint failures in a row
    slow: int = 0  # slow answers in a row
    down_since: float | None = None  # breaker open since (None: up)
    probing: bool = False  # the one probe of a down endpoint is out
    completed: int = 0
    failed: int = 0

    @property
    def load(self) -> float:
        return self.in_flight / self.capacity

    @property
    def free(self) -> bool:
        """Room for one more: a host that just failed (not yet out) gets one at a time."""
        return self.in_flight < (1 if self.failures else self.capacity)

    def due(self, now: float, cooloff: float) -> bool:
        """Up, or down long enough that one probe may go (and none is out)."""
        if self.down_since is None:
            return True
        return not self.probing and now - self.down_since >= cooloff


@dataclass(frozen=True, slots=True)
class Choice:
    """The endpoint a request goes to; ``hand_back``: another endpoint could take it, so on
    an endpoint failure the caller answers at once (no retry there) and the router moves it."""

    name: str
    url: str
    hand_back: bool


UNSCHEDULED = Choice("", "", False)


class Endpoints:
    def __init__(self, by_provider: Mapping[str, Iterable[EndpointSpec]], *,
                 failures: int = 3, cooloff: float = 10.0, slow_streak: int = 5,
                 slow_factor: float = 4.0) -> None:
        self.failures = failures
        self.cooloff = cooloff
        self.slow_streak = slow_streak
        self.slow_factor = slow_factor
        self.by_provider: dict[str, list[EndpointState]] = {
            provider: [EndpointState(provider, s.name, s.url, max(1, s.capacity)) for s in specs]
            for provider, specs in by_provider.items()}
        self.by_name = {e.name: e for states in self.by_provider.values() for e in states}

    def all(self) -> list[EndpointState]:
        return list(self.by_name.values())

    def pick(self, provider: str, now: float, tried: frozenset[str] = frozenset()
             ) -> Choice | None:
        """The endpoint for a request of ``provider`` (None: wait, every one it may use is
        full).  ``tried``: endpoints that already failed this request."""
        states = self.by_provider.get(provider)
        if not states:
            return UNSCHEDULED
        usable = [e for e in states if e.name not in tried and e.due(now, self.cooloff)]
        if not usable:  # all down or tried: the caller's own chain decides what follows
            free = [e for e in states if e.in_flight < e.capacity]
            best = min(free, key=lambda e: (e.name in tried, e.load, e.latency), default=None)
            return None if best is None else Choice(best.name, best.url, False)
        free = [e for e in usable if e.free]
        if not free:
            return None
        # A host due for its probe goes first (else, under light load, a peer with room would
        # always win and the host would never come back); a host that failed lately but is
        # not out yet goes last.
        best = min(free, key=lambda e: (e.down_since is None and e.failures > 0,
                                        e.down_since is None, e.load, e.latency))
        return Choice(best.name, best.url, any(e is not best for e in usable))

    def started(self, name: str) -> None:
        state = self.by_name.get(name)
        if state is None:
            return
        state.in_flight += 1
        if state.down_since is not None:
            state.probing = True

    def released(self, name: str) -> None:
        """The request left the endpoint without a verdict on it (its caller died, it was
        withdrawn, or it failed for a reason of its own)."""
        state = self.by_name.get(name)
        if state is None:
            return
        state.in_flight = max(0, state.in_flight - 1)
        state.probing = False

    def succeeded(self, name: str, latency: float, now: float) -> None:
        state = self.by_name.get(name)
        if state is None:
            return
        self.released(name)
        state.completed += 1
        state.failures = 0
        slow = self._is_slow(state, latency)
        state.latency = latency if state.latency == 0 else \
            EWMA_ALPHA * latency + (1 - EWMA_ALPHA) * state.latency
        state.slow = state.slow + 1 if slow else 0
        if state.down_since is not None:
            state.down_since = None  # the probe answered: back in
            state.slow = 0
        elif state.slow >= self.slow_streak:  # answering, but far slower than its peers
            state.down_since, state.slow = now, 0

    def failed(self, name: str, now: float) -> None:
        state = self.by_name.get(name)
        if state is None:
            return
        self.released(name)
        state.failed += 1
        state.failures += 1
        # A whole capacity of failures in a row is every slot failing: out, even below
        # ``failures`` (a dead host's in-flight calls fail together; one more would not
        # tell more and would cost its request a retry).
        # ``failures`` 0 is providers.breaker_failures 0: "never" (only a failed probe of a
        # host already out keeps it out).
        if state.down_since is not None or (
                self.failures > 0 and state.failures >= min(self.failures, state.capacity)):
            state.down_since = now  # a failed probe waits a whole cool-off again

    def up(self, name: str) -> bool:
        state = self.by_name.get(name)
        return state is not None and state.down_since is None

    def _is_slow(self, state: EndpointState, latency: float) -> bool:
        peers = [e.latency for e in self.by_provider[state.provider]
                 if e is not state and e.down_since is None and e.latency > 0]
        if not peers or latency < SLOW_FLOOR:
            return False
        return latency > self.slow_factor * min(peers)


def export(endpoints: Endpoints) -> None:
    """Set the endpoint gauges (the router calls it after each dispatch round)."""
    for state in endpoints.all():
        metrics.ENDPOINT_CAPACITY.labels(state.name).set(state.capacity)
        metrics.ENDPOINT_IN_FLIGHT.labels(state.name).set(state.in_flight)
        metrics.ENDPOINT_UP.labels(state.name).set(0 if state.down_since is not None else 1)


def endpoints_from_config(cfg: Config) -> Endpoints:
    """The endpoints of every provider the router may ask for (the chain's and the
    budget's switch), with the providers' breaker settings."""
    providers = [cfg.llm.provider, *(f.provider for f in cfg.providers.fallbacks),
                 *(child.llm.provider for child in channel_configs(cfg))]
    if cfg.budget.action == "switch" and cfg.budget.switch_provider:
        providers.append(cfg.budget.switch_provider)
    return Endpoints({p: provider_endpoints(cfg, p) for p in dict.fromkeys(providers)},
                     failures=max(0, cfg.providers.breaker_failures),
                     cooloff=cfg.providers.breaker_cooloff)
