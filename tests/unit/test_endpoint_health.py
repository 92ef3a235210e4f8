"""``rosey doctor``'s check of each model host (rosey/caller/endpoint_health.py), against
fake Ollama servers: one healthy, one without the model, one gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.llm import FakeLLM
from rosey.caller.endpoint_health import check_endpoints
from rosey.config import parse_config


@pytest.mark.integration  # fake Ollama servers on loopback
async def test_each_endpoint_is_checked_for_reachability_and_the_model() -> None:
    async with FakeLLM("ollama", models=["m"]) as good, FakeLLM("ollama", models=["x"]) as bare, \
            FakeLLM("ollama", models=["m"]) as gone:
        await gone.kill()
        endpoints = [{"name": "good", "url": good.url, "capacity": 2},
                     {"name": "bare", "url": bare.url, "capacity": 2},
                     {"name": "gone", "url": gone.url, "capacity": 2}]
        cfg = parse_config({"channel": "c", "user": ["bot", ""],
                            "llm": {"provider": "ollama", "model": "m"},
                            "providers": {"ollama": {"endpoints": endpoints}}},
                           base_dir=Path("/tmp"), env={})
        found = await check_endpoints(cfg, timeout=2.0)
    assert [(h.endpoint, h.ok) for h in found] == [("good", True), ("bare", False),
                                                   ("gone", False)]
    assert found[0].name == f"endpoint good ({good.url}) ollama m"
    assert "not found" in found[1].detail.lower()
    assert "unreachable" in found[2].detail.lower()


async def test_a_lone_endpoint_is_left_to_the_provider_line() -> None:
    cfg = parse_config({"channel": "c", "user": ["bot", ""],
                        "llm": {"provider": "ollama", "model": "m"}},
                       base_dir=Path("/tmp"), env={})
    assert await check_endpoints(cfg, timeout=0.5) == []
