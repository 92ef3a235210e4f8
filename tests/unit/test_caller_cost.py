"""Tokens, cost and budget: the price table, the caller's Result, the router's tracker."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.metrics import MetricWrapperBase

from rosey import metrics
from rosey.caller.base import Completion, Health, OnText
from rosey.caller.pricing import PriceTable
from rosey.caller.providers import ChainOutcome, Target
from rosey.caller.service import CallerService, chain_from_config, providers_in_use
from rosey.config import parse_config
from rosey.protocol import Request, Turn
from rosey.router.budget import BudgetTracker, Snapshot

PRICES = {"gpt-4o-mini": [0.15, 0.60], "gpt-4o": [2.50, 10.0], "llama3.2:3b": [0.0, 0.0]}


def sample(metric: MetricWrapperBase, **labels: str) -> float:
    for family in metric.collect():
        for s in family.samples:
            if s.name in (family.name, family.name + "_total") and s.labels == labels:
                return float(s.value)
    return 0.0


def config(**sections: Any) -> Any:
    raw = {"channel": "chan", "user": ["bot", ""], **sections}
    return parse_config(raw, base_dir=Path("/tmp"), env={})


# ---- pricing ----------------------------------------------------------------------------


def test_cost_from_tokens_and_prices() -> None:
    table = PriceTable(PRICES)
    # 1000 prompt tokens at $0.15/1M + 500 completion tokens at $0.60/1M
    assert table.cost("gpt-4o-mini", 1000, 500) == pytest.approx(0.00045)
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert table.cost("llama3.2:3b", 10_000, 10_000) == 0
    assert table.cost("unlisted", 10_000, 10_000) == 0 and not table.is_priced("unlisted")


def test_price_lookup_prefers_the_most_specific_listed_name() -> None:
    table = PriceTable(PRICES)
    # OpenAI reports a dated snapshot: the requested name wins, then the longest prefix
    assert table.price("gpt-4o-mini", reported="gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert table.price("alias", reported="gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert table.price("alias", reported="gpt-4o-2024-08-06") == (2.50, 10.0)
    assert table.price("alias", reported="gpt-4oxyz") is None  # no separator: not a variant


def test_price_table_rejects_bad_entries() -> None:
    with pytest.raises(ValueError, match=r"budget\.prices\.m"):
        PriceTable({"m": [1.0]})
    with pytest.raises(ValueError, match="both >= 0"):
        PriceTable({"m": [1.0, -2.0]})


# ---- the caller's Result ----------------------------------------------------------------


class Backend:
    name = "fake"

    async def complete(self, turns: list[Turn], model: str, timeout: float) -> Completion:
        return Completion("hi", 1000, 500, model + "-2024-07-18")

    async def stream(self, turns: list[Turn], model: str, timeout: float,
                     on_text: OnText) -> Completion:
        done = await self.complete(turns, model, timeout)  # one piece: these tests do not stream
        await on_text(done.text)
        return done

    async def check(self, model: str, timeout: float = 5.0) -> Health:
        return Health(True, "ok")

    async def aclose(self) -> None:
        pass


def request(provider: str, model: str) -> Request:
    return Request(id="r1", deadline=1e12, provider=provider, model=model,
                   turns=[Turn("user", "alice: hi")])


async def test_result_carries_tokens_and_cost_and_counts_them(
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(llm={"provider": "openai", "model": "gpt-4o-mini", "openai_api_key": "sk"},
                 budget={"prices": PRICES})
    service = CallerService(cfg, 0, backend_factory=lambda p, url: Backend())
    labels = {"provider": "openai", "model": "gpt-4o-mini"}
    cost_before = sample(metrics.LLM_COST, **labels)
    tokens_before = sample(metrics.LLM_TOKENS, **labels, kind="completion")

    result = await service.call(request("openai", "gpt-4o-mini"))

    assert result.ok and result.text == "hi"
    assert (result.prompt_tokens, result.completion_tokens) == (1000, 500)
    assert result.cost_usd == pytest.approx(0.00045)
    assert (result.provider, result.model, result.attempts) == ("openai", "gpt-4o-mini", 1)
    assert sample(metrics.LLM_COST, **labels) - cost_before == pytest.approx(0.00045)
    assert sample(metrics.LLM_TOKENS, **labels, kind="completion") - tokens_before == 500
    assert "no price" not in caplog.text

    unpriced = CallerService(config(llm={"provider": "openai", "model": "gpt-5",
                                         "openai_api_key": "sk"}), 1,
                             backend_factory=lambda p, url: Backend())
    with caplog.at_level(logging.WARNING, logger="rosey.caller"):
        again = await unpriced.call(request("openai", "gpt-5"))
        await unpriced.call(request("openai", "gpt-5"))
    assert again.ok and again.cost_usd == 0
    assert caplog.text.count("no price for openai/gpt-5") == 1  # said once, not per call


def test_failed_outcome_becomes_an_error_result() -> None:
    from rosey.caller.base import LLMError

    service = CallerService(config(), 0, backend_factory=lambda p, url: Backend())
    out = ChainOutcome(Target("ollama", "llama3.2:3b"), error=LLMError("server", "boom"))
    result = service.result_of(request("ollama", "llama3.2:3b"), out)
    assert (result.ok, result.error_kind, result.error, result.cost_usd) == (
        False, "server", "boom", 0.0)


def test_chain_and_providers_come_from_config() -> None:
    plain = config()
    assert chain_from_config(plain) == [Target("ollama", "llama3.2:3b")]
    assert providers_in_use(plain) == ["ollama"]
    chained = config(llm={"openai_api_key": "sk-x"}, providers={"primary_timeout": 8, "fallbacks": [
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "ollama", "model": "llama3.2:3b"},  # the primary again: ignored
        {"provider": "ollama", "model": "qwen2.5:0.5b", "timeout": 3}]})
    assert chain_from_config(chained) == [Target("ollama", "llama3.2:3b", 8.0),
                                          Target("openai", "gpt-4o-mini"),
                                          Target("ollama", "qwen2.5:0.5b", 3.0)]
    assert providers_in_use(chained) == ["ollama", "openai"]


# ---- the budget tracker (the router's) -----------------------------------------------------


def ts(text: str, tz: Any = UTC) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def test_budget_states_at_80_and_100_percent() -> None:
    budget = BudgetTracker(daily_usd=1.0, monthly_usd=10.0)
    now = ts("2025-03-10T12:00:00")
    assert budget.state(now) == "ok" and budget.ratio(now) == 0
    assert budget.add(0.79, now) == "ok"
    assert budget.add(0.01, now) == "warning"  # exactly 80 %
    assert budget.ratio(now) == pytest.approx(0.8)
    assert budget.add(0.2, now) == "exhausted"
    assert budget.spent(now) == pytest.approx((1.0, 1.0))


def test_budget_day_resets_at_local_midnight_and_month_keeps_counting() -> None:
    tz = ZoneInfo("Europe/Berlin")
    budget = BudgetTracker(daily_usd=1.0, monthly_usd=2.5, tz=tz)
    budget.add(1.0, ts("2025-03-10T23:59:00", tz))
    assert budget.state(ts("2025-03-10T23:59:59", tz)) == "exhausted"
    # 00:00 in Berlin is 23:00 UTC the day before: the day is new, the month is not
    after_midnight = ts("2025-03-11T00:00:01", tz)
    assert budget.state(after_midnight) == "ok"
    assert budget.spent(after_midnight) == pytest.approx((0.0, 1.0))
    budget.add(1.0, after_midnight)
    assert budget.state(after_midnight) == "exhausted"  # daily limit again
    budget.add(0.1, ts("2025-03-12T10:00:00", tz))
    assert budget.ratio(ts("2025-03-12T10:00:00", tz)) == pytest.approx(2.1 / 2.5)
    assert budget.state(ts("2025-03-12T10:00:00", tz)) == "warning"  # monthly 84 %
    assert budget.spent(ts("2025-04-01T00:00:00", tz)) == (0.0, 0.0)


def test_budget_without_limits_is_always_ok() -> None:
    budget = BudgetTracker()
    now = ts("2025-03-10T12:00:00")
    budget.add(1000.0, now)
    assert budget.state(now) == "ok" and budget.ratio(now) == 0
    assert budget.spent(now) == (1000.0, 1000.0)


def test_budget_snapshot_restores_only_the_current_periods() -> None:
    budget = BudgetTracker(daily_usd=1.0, monthly_usd=10.0)
    day1 = ts("2025-03-10T12:00:00")
    budget.add(0.9, day1)
    snap = budget.snapshot(day1)
    assert (snap.day, snap.month) == ("2025-03-10", "2025-03")
    assert (snap.day_usd, snap.month_usd) == pytest.approx((0.9, 0.9))
    assert isinstance(snap, Snapshot)

    same_day = BudgetTracker(daily_usd=1.0, monthly_usd=10.0)
    same_day.restore(snap, day1 + 60)
    assert same_day.state(day1 + 60) == "warning"
    next_day = BudgetTracker(daily_usd=1.0, monthly_usd=10.0)
    next_day.restore(snap, day1 + 86400)
    assert next_day.spent(day1 + 86400) == pytest.approx((0.0, 0.9))
    with pytest.raises(ValueError):
        BudgetTracker(daily_usd=-1)
