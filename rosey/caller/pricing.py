"""Estimated cost of a call from its tokens and ``budget.prices``.  Pure.

``budget.prices`` maps a model name to ``[input, output]`` USD per 1M tokens.  A model
not listed costs 0: that is right for a local Ollama and is said once in the log for a
paid provider (a budget cannot guard spend it cannot see).

The name a provider reports may be more specific than the one asked for (OpenAI answers
``gpt-4o-mini`` with ``gpt-4o-mini-2024-07-18``), so a price is looked up by the
requested name, then the reported name, then the longest listed name that the reported
one starts with followed by ``-`` or ``:`` (``gpt-4o-mini`` prices
``gpt-4o-mini-2024-07-18``; ``gpt-4o`` alone would too, erring on the dear side).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PER_TOKENS = 1_000_000


class PriceTable:
    def __init__(self, prices: Mapping[str, Sequence[float]]) -> None:
        for model, pair in prices.items():
            if len(pair) != 2 or any(p < 0 for p in pair):
                raise ValueError(f"budget.prices.{model}: expected [input, output] USD per "
                                 "1M tokens, both >= 0")
        self.prices = {model: (float(pair[0]), float(pair[1])) for model, pair in prices.items()}

    def price(self, model: str, reported: str = "") -> tuple[float, float] | None:
        """``(input, output)`` USD per 1M tokens, or None when the model is not listed."""
        for name in (model, reported):
            if name and name in self.prices:
                return self.prices[name]
        name = reported or model
        best = ""
        for listed in self.prices:
            if len(listed) > len(best) and name.startswith(listed) and \
                    name[len(listed):len(listed) + 1] in ("-", ":"):
                best = listed
        return self.prices[best] if best else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int,
             reported: str = "") -> float:
        """USD for one call; 0 for a model without a price."""
        pair = self.price(model, reported)
        if pair is None:
            return 0.0
        return (prompt_tokens * pair[0] + completion_tokens * pair[1]) / PER_TOKENS

    def is_priced(self, model: str, reported: str = "") -> bool:
        return self.price(model, reported) is not None
