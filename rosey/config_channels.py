"""One ``Config`` per channel: the top level deep-merged with its ``channels`` entry.

A config without ``channels`` serves one channel: ``channel_configs`` returns the config
itself (so a caller's later change to it is seen).  With ``channels``, each entry's
partial ``conn``/``llm``/``router`` overrides the top level for that channel; dicts merge
key by key (``router.limits``, ``router.personas``), everything else is replaced.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rosey.config_endpoints import provider_endpoints
from rosey.config_schema import LLM, ChannelEntry, Config, Conn, Router

# The sections a channel may override, and the struct each override is checked against.
SECTIONS: dict[str, type[msgspec.Struct]] = {"conn": Conn, "llm": LLM, "router": Router}
# Keys of those sections that are the deployment's, not a channel's (model hosts are shared).
SHARED_KEYS = {"llm": {
    "ollama_host": "set providers.ollama.endpoints at the top level: every channel shares "
                   "the model hosts",
    "openai_api_key": "set OPENAI_API_KEY (or llm.openai_api_key at the top level): every "
                      "channel shares the caller pool and its key"},
    "router": {
    "queue_max": "set router.queue_max at the top level: one queue, shared fairly by every "
                 "channel, holds the deployment's waiting requests"}}

_cache: dict[int, tuple[bytes, list[Config]]] = {}
_CACHE_MAX = 8  # a few live configs (the running one and a reload being checked)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_channel_configs(cfg: Config) -> list[Config]:
    """One full ``Config`` per entry, in config order (overrides already type-checked)."""
    if not cfg.channels:
        return [cfg]
    top: dict[str, Any] = msgspec.to_builtins(cfg)
    top["channels"] = []
    out = []
    for entry in cfg.channels:
        raw = {**top, "channel": entry.channel}
        for section in SECTIONS:
            override = getattr(entry, section)
            if override:
                raw[section] = deep_merge(top[section], override)
        # The prompt file wins over the inline prompt (prompts.py), so a channel that gives
        # its own inline prompt must not keep the file it would inherit.
        if "system_prompt" in (entry.llm or {}) and "system_prompt_file" not in (entry.llm or {}):
            raw["llm"]["system_prompt_file"] = ""
        out.append(msgspec.convert(raw, Config, strict=True))
    return out


def channel_configs(cfg: Config) -> list[Config]:
    """One validated ``Config`` per channel, in config order, ``.channel`` set.

    Computed once per config state: the same objects come back until ``cfg`` changes.
    """
    if not cfg.channels:
        return [cfg]
    state = msgspec.json.encode(cfg)
    hit = _cache.get(id(cfg))
    if hit is not None and hit[0] == state:
        return list(hit[1])
    built = build_channel_configs(cfg)
    if len(_cache) >= _CACHE_MAX:
        _cache.pop(next(iter(_cache)))
    _cache[id(cfg)] = (state, built)
    return list(built)


def entry_of(cfg: Config, channel: str) -> ChannelEntry | None:
    return next((e for e in cfg.channels if e.channel == channel), None)


def resolved_lines(cfg: Config) -> list[str]:
    """What ``rosey check-config`` prints after OK: each channel with what it overrides,
    and the model endpoints of every provider in use."""
    lines = []
    for child in channel_configs(cfg):
        entry = entry_of(cfg, child.channel)
        changed = [f"{section}.{key}" for section in SECTIONS
                   for key in sorted(getattr(entry, section) if entry else {})]
        what = "overrides " + ", ".join(changed) if changed else "the top-level settings"
        state = "llm on" if child.llm.enabled else "llm off"
        lines.append(f"  channel {child.channel}: {state}; {what}")
    used = {cfg.llm.provider, *(f.provider for f in cfg.providers.fallbacks)}
    for child in channel_configs(cfg):
        used.add(child.llm.provider)
    for provider in ("ollama", "openai"):
        if provider in used:
            for endpoint in provider_endpoints(cfg, provider):
                lines.append(f"  endpoint {endpoint.name} ({provider}): {endpoint.url}, "
                             f"capacity {endpoint.capacity}")
    return lines
