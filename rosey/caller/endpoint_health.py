"""Is each model host up and does it have the model?  For ``rosey doctor``.

One ``Backend.check`` per configured endpoint of each provider in the chain (and per
model of the chain on that provider): reachable, credentials accepted, model present.
Only providers with several endpoints are listed here; a lone endpoint is the provider's
default, which doctor's provider line already checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from rosey.caller.base import make_backend
from rosey.caller.service import backend_kwargs, chain_from_config
from rosey.config import Config, provider_endpoints


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    provider: str
    model: str
    endpoint: str
    url: str
    ok: bool
    detail: str

    @property
    def name(self) -> str:
        return f"endpoint {self.endpoint} ({self.url}) {self.provider} {self.model}"


async def check_endpoints(cfg: Config, timeout: float) -> list[EndpointHealth]:
    models: dict[str, list[str]] = {}
    for target in chain_from_config(cfg):
        models.setdefault(target.provider, []).append(target.model)
    found = []
    for provider, names in models.items():
        endpoints = provider_endpoints(cfg, provider)  # type: ignore[arg-type]
        if len(endpoints) < 2:
            continue
        for endpoint in endpoints:
            backend = make_backend(provider, **backend_kwargs(cfg, provider, endpoint.url))
            try:
                for model in names:
                    health = await backend.check(model, timeout=timeout)
                    found.append(EndpointHealth(provider, model, endpoint.name, endpoint.url,
                                                health.ok, health.detail))
            finally:
                await backend.aclose()
    return found
