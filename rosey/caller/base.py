"""The provider-neutral LLM interface: one call in, one classified outcome out.

A backend's ``complete`` either returns a ``Completion`` or raises ``LLMError`` whose
``kind`` is one of the wire's ``ErrorKind`` values; the caller's retry / failover policy
(docs/ARCHITECTURE.md, docs/DECISIONS.md) reads only ``kind``, ``retryable`` and ``retry_after``.

Nothing here imports a provider SDK: ``make_backend`` imports the one module asked for.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rosey.errors import RoseyError
from rosey.protocol import ErrorKind, Turn

PROVIDERS = ("openai", "ollama")

# Kinds worth another attempt while the deadline allows.  auth / not_found / empty /
# internal never are: the same request would fail the same way.
RETRYABLE_KINDS: frozenset[str] = frozenset(
    {"timeout", "connection", "rate_limited", "server", "bad_response"}
)


class LLMError(RoseyError):
    """A failed provider call, classified.

    ``retryable`` defaults from ``kind``; a backend may override it when it knows better
    (an OpenAI 429 ``insufficient_quota`` is rate_limited in kind but retrying is futile).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        if self._retryable is not None:
            return self._retryable
        return self.kind in RETRYABLE_KINDS

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.kind}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"LLMError(kind={self.kind!r}, message={self.message!r}, status={self.status!r}, "
            f"retry_after={self.retry_after!r}, retryable={self.retryable!r})"
        )


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


# Receives each piece of text as a streamed answer arrives (``Backend.stream``).
OnText = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Health:
    """The result of a start-up / ``status`` probe: ``detail`` is one human line."""

    ok: bool
    detail: str


@runtime_checkable
class Backend(Protocol):
    name: str

    async def complete(self, turns: list[Turn], model: str, timeout: float) -> Completion:
        """One chat completion; ``timeout`` is a hard deadline in seconds.

        Raises ``LLMError`` only (``asyncio.CancelledError`` passes through).
        """
        ...

    async def stream(self, turns: list[Turn], model: str, timeout: float,
                     on_text: OnText) -> Completion:
        """The same call streamed: ``on_text`` gets each piece of text as it arrives, and
        the Completion (the whole text, and usage reported at the end) is returned.

        ``timeout`` bounds the whole answer.  Raises ``LLMError`` only, also mid-stream.
        """
        ...

    async def check(self, model: str, timeout: float = 5.0) -> Health:
        """Host reachable, credentials accepted, model present.  Never raises."""
        ...

    async def aclose(self) -> None: ...


def make_backend(provider: str, **kwargs: Any) -> Backend:
    """Build the backend for ``provider``, importing only that provider's SDK.

    ``kwargs`` go to the backend's constructor (``OpenAIBackend`` / ``OllamaBackend``).
    """
    if provider == "openai":
        from rosey.caller.openai_backend import OpenAIBackend

        return OpenAIBackend(**kwargs)
    if provider == "ollama":
        from rosey.caller.ollama_backend import OllamaBackend

        return OllamaBackend(**kwargs)
    raise ValueError(f"unknown LLM provider {provider!r}; expected one of {', '.join(PROVIDERS)}")


# ---- helpers shared by the backends -----------------------------------------


def turns_to_messages(turns: Iterable[Turn]) -> list[dict[str, str]]:
    return [{"role": turn.role, "content": turn.content} for turn in turns]


def kind_for_status(status: int) -> ErrorKind:
    """Map an HTTP error status to an error kind."""
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limited"
    if status >= 500 or status == 409:
        return "server"
    # 400, 413, 422, ...: the request itself is wrong (context too long, unsupported
    # parameter); sending it again cannot help.
    return "internal"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))
    except (TypeError, ValueError, OverflowError):
        return None


def short(text: object, limit: int = 200) -> str:
    """One line of at most ``limit`` characters, for error messages and health details."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def list_names(names: list[str], limit: int = 8) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return f"{shown}, … {more} more" if more > 0 else shown


__all__ = [
    "PROVIDERS",
    "RETRYABLE_KINDS",
    "Backend",
    "Completion",
    "Health",
    "LLMError",
    "OnText",
    "make_backend",
]
