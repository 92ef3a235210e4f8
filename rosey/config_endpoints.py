"""The model hosts of each provider: ``providers.<p>.endpoints``, or the legacy single one.

``llm.ollama_host`` (or ``OLLAMA_HOST``) and ``providers.openai.base_url`` stay valid and
mean a list of one, whose capacity is the whole caller pool's (``callers.max *
callers.slots``): writing the old key adds no new limit.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from rosey.config_schema import Config, Endpoint

ProviderName = Literal["openai", "ollama"]
PROVIDERS: tuple[ProviderName, ...] = ("ollama", "openai")
NAME_RE = re.compile(r"^[a-z0-9_-]{1,40}$")
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"  # what the SDK uses when given none


def endpoint_name(url: str) -> str:
    """``http://GPU1.lan:11434`` → ``gpu1-lan-11434``: a label value from host and port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "host").lower()
    return re.sub(r"[^a-z0-9_-]+", "-", f"{host}-{port}").strip("-")[:40]


def provider_endpoints(cfg: Config, provider: ProviderName) -> list[Endpoint]:
    """The provider's endpoints in config order, each with its name filled in."""
    listed = cfg.providers.ollama.endpoints if provider == "ollama" else \
        cfg.providers.openai.endpoints
    if listed:
        return [Endpoint(name=e.name or endpoint_name(e.url), url=e.url, capacity=e.capacity)
                for e in listed]
    url = cfg.llm.ollama_host if provider == "ollama" else \
        (cfg.providers.openai.base_url or OPENAI_DEFAULT_URL)
    return [Endpoint(name=endpoint_name(url), url=url,
                     capacity=cfg.callers.max * cfg.callers.slots)]


def endpoint_problems(cfg: Config, legacy: dict[ProviderName, str]) -> list[tuple[str, str]]:
    """``(path, problem; fix)`` for every bad endpoint; ``legacy`` names, per provider, the
    old single-endpoint setting the operator also gave ("" if none)."""
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for provider in PROVIDERS:
        where = f"$.providers.{provider}.endpoints"
        listed = cfg.providers.ollama.endpoints if provider == "ollama" else \
            cfg.providers.openai.endpoints
        if listed and legacy.get(provider):
            problems.append((where, f"given together with {legacy[provider]}; keep one: "
                             f"remove {legacy[provider]} (the endpoints list replaces it)"))
        for index, endpoint in enumerate(listed):
            path = f"{where}[{index}]"
            if not re.match(r"^https?://[^/\s]+", endpoint.url):
                problems.append((f"{path}.url", "expected a URL starting with http:// or "
                                 "https://, e.g. http://gpu1:11434"))
            if endpoint.capacity < 1:
                problems.append((f"{path}.capacity", "expected 1 or more (calls it may run "
                                 "at once)"))
            if endpoint.name and not NAME_RE.match(endpoint.name):
                problems.append((f"{path}.name", "expected 1-40 characters of a-z, 0-9, - "
                                 "or _ (it becomes a metric label)"))
        for index, endpoint in enumerate(provider_endpoints(cfg, provider) if listed else []):
            path = f"{where}[{index}]"
            if endpoint.name in seen:
                problems.append((f"{path}.name", f"{endpoint.name!r} is also {seen[endpoint.name]}"
                                 "; give each endpoint a distinct \"name\""))
            seen.setdefault(endpoint.name, path)
    return problems
