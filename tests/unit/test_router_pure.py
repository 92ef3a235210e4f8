"""The router's pure parts: triggers, cooldowns, history, prompts, commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from rosey.protocol import Turn
from rosey.router import commands
from rosey.router.history import History
from rosey.router.limits import LimitConfig, Limiter
from rosey.router.prompts import (
    address,
    build_turns,
    load_system_prompt,
    postprocess,
    render_system_prompt,
    strip_markdown,
)
from rosey.router.triggers import TriggerMatcher


@pytest.mark.parametrize("text", [
    "rosey", "hey rosey, what's up?", "@Rosey", "Rosey: hi", "ROSEY!", "what do you think rosey?",
    "(rosey)", "rosey's opinion", "hi @rosey", "RoSeY ...",
])
def test_name_triggers(text: str) -> None:
    assert TriggerMatcher("rosey", []).match(text) is not None


@pytest.mark.parametrize("text", [
    "roseybud", "primrosey", "see https://example.com/rosey/page", "rosey_fan said hi",
    "rosey-bot is another bot", "nothing here", "www.rosey.com",
])
def test_near_misses_do_not_trigger(text: str) -> None:
    assert TriggerMatcher("rosey", []).match(text) is None


def test_extra_triggers_regexes_and_switching_the_name_off() -> None:
    matcher = TriggerMatcher("rosey", ["hey bot", "re:^!ask\\b"], include_bot_name=False)
    assert matcher.match("rosey hi") is None
    hit = matcher.match("Hey Bot, hello")
    assert hit is not None and hit.kind == "keyword"
    hit = matcher.match("!ask what time is it")
    assert hit is not None and hit.kind == "regex"
    assert matcher.match("!asking") is None


def test_unicode_and_underscore_names() -> None:
    assert TriggerMatcher("Rösey_2", []).match("hallo rösey_2!") is not None
    assert TriggerMatcher("Rösey_2", []).match("hallo rösey_22") is None


def test_cooldown_per_user_global_and_rank_exemption() -> None:
    limits = Limiter(LimitConfig(user_cooldown=10, global_cooldown=2, exempt_rank=2))
    assert limits.check("alice", now=0) is None
    limits.accept("alice", now=0)
    refusal = limits.check("alice", now=5)
    assert refusal is not None and refusal.scope == "user" and refusal.retry_in == 5
    refusal = limits.check("bob", now=1)
    assert refusal is not None and refusal.scope == "global"
    assert limits.check("bob", now=2) is None
    assert limits.check("alice", now=5, rank=2) is None
    assert limits.check("alice", now=10) is None


def test_token_buckets_refill_at_their_rate() -> None:
    limits = Limiter(LimitConfig(user_cooldown=0, user_burst=2, user_per_hour=60,
                                 global_burst=3, global_per_hour=3600))
    limits.accept("alice", 0)
    limits.accept("alice", 0)
    refusal = limits.check("alice", 0)
    assert refusal is not None and refusal.scope == "user_bucket"
    assert refusal.retry_in == pytest.approx(60)
    assert limits.check("alice", 60) is None
    limits.accept("bob", 0)
    refusal = limits.check("carol", 0)
    assert refusal is not None and refusal.scope == "global_bucket"
    assert limits.check("carol", 1.0) is None


def test_daily_quota_resets_at_local_midnight() -> None:
    limits = Limiter(LimitConfig(user_cooldown=0, daily_quota=2, timezone="Europe/Berlin"))
    evening = 1795629600.0  # 2026-11-25 18:00 UTC = 19:00 in Berlin
    limits.accept("alice", evening)
    limits.accept("alice", evening + 1)
    refusal = limits.check("alice", evening + 2)
    assert refusal is not None and refusal.scope == "daily"
    assert refusal.retry_in == pytest.approx(5 * 3600 - 2)
    assert limits.check("alice", evening + 5 * 3600) is None  # midnight in Berlin


def test_limits_state_restores_and_memory_is_bounded() -> None:
    limits = Limiter(LimitConfig(user_cooldown=10), max_keys=3)
    state = limits.accept("alice", 100)
    fresh = Limiter(LimitConfig(user_cooldown=10))
    fresh.restore("alice", state)
    assert fresh.check("alice", 105) is not None
    for n in range(5):
        limits.accept(f"u{n}", now=200)
    assert limits.check("alice", now=201) is None  # forgotten, long cooled down anyway


def test_history_counts_messages_and_chars() -> None:
    history = History(max_messages=4, max_chars=25)
    for n in range(3):
        history.append("Alice", "user", f"question {n}")
        history.append("alice", "assistant", f"answer {n}")
    turns = history.turns("ALICE")
    assert [t.content for t in turns] == ["question 2", "answer 2"]  # 4 kept, 25 chars fit 2
    history.forget("alice")
    assert history.turns("alice") == []
    assert History(max_messages=0).turns("x") == []


def test_prompt_assembly_and_templating(tmp_path: Path) -> None:
    prompt_file = tmp_path / "prompt.md"
    prompt_file.write_text("You are {bot_name} in {channel}; keep {unknown}.\n")
    template = load_system_prompt("inline", str(prompt_file), "default")
    system = render_system_prompt(template, bot_name="rosey", channel="chan", user="alice")
    assert system == "You are rosey in chan; keep {unknown}."
    assert load_system_prompt("", "", "default") == "default"
    turns = build_turns(system, [Turn("user", "alice: hi"), Turn("assistant", "hello")],
                        "what's up?", "alice")
    assert turns[0] == Turn("system", system)
    assert turns[-1] == Turn("user", "alice: what's up?")
    assert len(turns) == 4


def test_postprocess_strips_markdown_and_bounds_length() -> None:
    assert strip_markdown("**bold** and `code` and ~~gone~~") == "bold and code and gone"
    assert postprocess("line one\n\n- item\n# Title", 100) == "line one - item Title"
    long = postprocess("word " * 100, 50)
    assert len(long) <= 50 and long.endswith("…")
    assert address("Alice", "hi") == "Alice: hi"


def _ctx(toggles: commands.Toggles, forgotten: list[str]) -> commands.CommandContext:
    return commands.CommandContext(toggles=toggles, now=100.0, status=lambda: "all good",
                                   forget=forgotten.append, set_cooldown=lambda s: None)


def test_command_table_permissions_and_effects() -> None:
    toggles = commands.Toggles()
    forgotten: list[str] = []
    ctx = _ctx(toggles, forgotten)
    mod, user = commands.Actor("mod", 2), commands.Actor("pleb", 1)
    assert commands.execute(ctx, mod, "status") == (True, "all good")
    assert commands.execute(ctx, user, "status")[0] is False
    assert commands.execute(ctx, user, "llm off")[0] is False and toggles.llm_enabled
    assert commands.execute(ctx, mod, "llm off")[0] and not toggles.llm_enabled
    assert commands.execute(ctx, mod, "quiet 5")[0] and toggles.quiet_until == 400.0
    assert commands.execute(ctx, mod, "cooldown x")[0] is False
    assert commands.execute(ctx, user, "forget me") == (True, "I forgot our conversation")
    assert commands.execute(ctx, user, "forget bob")[0] is False
    assert commands.execute(ctx, mod, "forget bob")[0]
    assert forgotten == ["pleb", "bob"]
    assert commands.execute(ctx, user, "optout")[0] and "pleb" in toggles.optouts
    assert commands.execute(ctx, user, "optin")[0] and "pleb" not in toggles.optouts
    assert commands.execute(ctx, mod, "bogus")[0] is False


def test_a_user_named_cli_is_not_the_control_socket() -> None:
    """Only the control socket sets ``cli``: a CyTube user may pick the name "cli"."""
    forgotten: list[str] = []
    ctx = _ctx(commands.Toggles(), forgotten)
    named_cli, socket = commands.Actor("cli", 2), commands.Actor("cli", 255, cli=True)
    assert not named_cli.is_cli and socket.is_cli
    assert commands.execute(ctx, named_cli, "forget me") == (True, "I forgot our conversation")
    assert forgotten == ["cli"]
    # The CLI has no conversation of its own: "me" is then a user's name.
    assert commands.execute(ctx, socket, "forget me") == (True, "forgot me")
    assert forgotten == ["cli", "me"]
