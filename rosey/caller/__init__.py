"""LLM provider backends used by the caller processes.

``rosey.caller.base`` holds the provider-neutral interface (``Backend``, ``Completion``,
``Health``, ``LLMError``) and ``make_backend``, which imports only the module of the
provider asked for: ``import openai`` alone costs ~58 MiB RSS and ``import ollama``
(pydantic) ~20 MiB, so neither this package nor ``base`` imports them at module level.

``rosey.caller.openai_backend`` and ``rosey.caller.ollama_backend`` hold the implementations.
"""

from rosey.caller.base import Backend, Completion, Health, LLMError, make_backend

__all__ = ["Backend", "Completion", "Health", "LLMError", "make_backend"]
