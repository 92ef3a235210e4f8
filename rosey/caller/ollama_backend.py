"""Ollama's native ``/api/chat`` through ``ollama.AsyncClient``.

Timeouts: ``ollama.AsyncClient`` hands ``timeout`` to one ``httpx.AsyncClient`` for its
whole life and ``chat()`` has no per-request timeout, while every request here has its
own deadline.  Rather than a client per call (a new connection pool, no keep-alive to
the server), one client is built with a generous backstop timeout and each call runs
under ``asyncio.timeout(timeout)``.  That is also the only true deadline: httpx's
timeouts are per phase (connect, each read, ...), so a server trickling bytes could
outlive any of them.  Cancelling the request closes its connection; the pool goes on.

Ambient environment: the SDK falls back to ``OLLAMA_HOST`` for an empty host and adds
``Authorization: Bearer $OLLAMA_API_KEY`` unless an authorization header is given; both
are refused here (config is the only reader of the environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json

import httpx
import ollama

from rosey.caller.base import (
    Completion,
    Health,
    LLMError,
    OnText,
    kind_for_status,
    list_names,
    parse_retry_after,
    short,
    turns_to_messages,
)
from rosey.protocol import Turn

# ResponseError keeps only status and body; a 429's Retry-After (from a proxy or a hosted
# Ollama) is caught by an httpx response hook into the calling task's own slot.
_retry_after: contextvars.ContextVar[list[float | None] | None] = contextvars.ContextVar(
    "rosey_ollama_retry_after", default=None
)


async def _remember_retry_after(response: httpx.Response) -> None:
    slot = _retry_after.get()
    if slot is not None and response.status_code == 429:
        slot[0] = parse_retry_after(response.headers)


class OllamaBackend:
    """``host`` like ``http://127.0.0.1:11434``; ``headers`` e.g. for a reverse proxy's auth.

    ``keep_alive`` (e.g. ``"10m"`` or seconds) and ``options`` (e.g. ``{"num_predict":
    200, "temperature": 0.7}``) are sent with every chat request when set.
    """

    name = "ollama"

    def __init__(
        self,
        host: str,
        headers: dict[str, str] | None = None,
        keep_alive: str | float | None = None,
        options: dict[str, object] | None = None,
        *,
        client_timeout: float = 300.0,
    ) -> None:
        if not host:
            raise ValueError("OllamaBackend needs a host, e.g. http://127.0.0.1:11434")
        self.host = host.rstrip("/")
        self.keep_alive = keep_alive
        # None values (unset config) are dropped rather than sent as JSON null
        kept = {key: value for key, value in (options or {}).items() if value is not None}
        self.options = kept or None
        self._client = ollama.AsyncClient(
            host=self.host,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(client_timeout, connect=min(client_timeout, 10.0)),
            event_hooks={"response": [_remember_retry_after]},
        )
        explicit = {name.lower() for name in (headers or {})}
        if "authorization" not in explicit:
            # The SDK added OLLAMA_API_KEY from the environment; we did not ask for it.
            self._client._client.headers.pop("authorization", None)

    async def complete(self, turns: list[Turn], model: str, timeout: float) -> Completion:
        slot: list[float | None] = [None]
        token = _retry_after.set(slot)  # one task runs one call at a time: the slot is ours
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.chat(
                    model=model,
                    messages=turns_to_messages(turns),
                    stream=False,
                    options=self.options,
                    keep_alive=self.keep_alive,
                )
        except TimeoutError:
            raise LLMError(
                "timeout", f"no answer from ollama at {self.host} within {timeout:g}s"
            ) from None
        except Exception as exc:  # every failure becomes a classified LLMError
            raise self._failure(exc, model, slot[0]) from exc
        finally:
            _retry_after.reset(token)
        content = response.message.content if response.message is not None else None
        if not content or not content.strip():
            raise LLMError(
                "empty", f"the model returned no text (done_reason={response.done_reason})"
            )
        return Completion(
            text=content,
            prompt_tokens=response.prompt_eval_count or 0,
            completion_tokens=response.eval_count or 0,
            model=response.model or model,
        )

    async def stream(self, turns: list[Turn], model: str, timeout: float,
                     on_text: OnText) -> Completion:
        """``stream=True``: the server sends NDJSON lines, each with the next
        ``message.content``; the last has ``done: true`` and the eval counts."""
        slot: list[float | None] = [None]
        token = _retry_after.set(slot)
        texts: list[str] = []
        last: ollama.ChatResponse | None = None
        lines = None
        try:
            async with asyncio.timeout(timeout):
                lines = await self._client.chat(
                    model=model,
                    messages=turns_to_messages(turns),
                    stream=True,
                    options=self.options,
                    keep_alive=self.keep_alive,
                )
                async for part in lines:
                    content = part.message.content if part.message is not None else None
                    if content:
                        texts.append(content)
                        await on_text(content)
                    last = part
        except TimeoutError:
            raise LLMError(
                "timeout", f"no complete answer from ollama at {self.host} within {timeout:g}s"
            ) from None
        except Exception as exc:
            raise self._failure(exc, model, slot[0]) from exc
        finally:
            _retry_after.reset(token)
            aclose = getattr(lines, "aclose", None)  # an async generator's: releases the
            if aclose is not None:  # connection when the loop was cut short
                with contextlib.suppress(Exception):
                    await aclose()
        if last is None or not last.done:
            raise LLMError("connection", f"ollama at {self.host}: the stream ended before "
                                         "its done line")
        text = "".join(texts)
        if not text.strip():
            raise LLMError("empty", f"the model streamed no text (done_reason="
                                    f"{last.done_reason})")
        return Completion(text=text, prompt_tokens=last.prompt_eval_count or 0,
                          completion_tokens=last.eval_count or 0, model=last.model or model)

    async def check(self, model: str, timeout: float = 5.0) -> Health:
        where = f"ollama at {self.host}"
        try:
            async with asyncio.timeout(timeout):
                listing = await self._client.list()
        except TimeoutError:
            return Health(False, f"{where}: no answer within {timeout:g}s")
        except Exception as exc:  # check() never raises
            err = self._classify(exc, model)
            if err.kind == "connection":
                return Health(
                    False,
                    f"{where}: unreachable ({err.message}); is `ollama serve` "
                    "running and the host right?",
                )
            if err.kind == "auth":
                return Health(False, f"{where}: credentials rejected ({err.status}): {err.message}")
            return Health(False, f"{where}: {err}")
        names = sorted(item.model for item in listing.models if item.model)
        wanted = _canonical(model)
        if any(_canonical(name) == wanted for name in names):
            return Health(True, f"{where}: model {model} present")
        return Health(
            False,
            f"{where}: model {model} not found (have: {list_names(names)}); "
            f"run `ollama pull {model}`",
        )

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # ollama leaves it unannotated

    def _failure(self, exc: BaseException, model: str, retry_after: float | None) -> LLMError:
        """A failed chat call as a classified LLMError; a 429 carries its Retry-After."""
        err = self._classify(exc, model)
        if err.kind == "rate_limited":
            err.retry_after = retry_after
        return err

    def _classify(self, exc: BaseException, model: str) -> LLMError:
        if isinstance(exc, ollama.ResponseError):
            status = exc.status_code if exc.status_code > 0 else None
            message = short(exc.error)
            if status is None:  # an error object inside a 200 body
                return LLMError("server", message)
            kind = kind_for_status(status)
            if kind == "not_found":
                message = f"{message}; run `ollama pull {model}` on {self.host}"
            return LLMError(kind, message, status=status)
        if isinstance(exc, ConnectionError):  # the SDK turns httpx.ConnectError into this
            return LLMError("connection", f"cannot connect to {self.host}")
        if isinstance(exc, httpx.TimeoutException):
            return LLMError("timeout", f"{self.host}: {type(exc).__name__}")
        if isinstance(exc, httpx.TransportError):  # reset, protocol error mid-response
            return LLMError("connection", f"{self.host}: {type(exc).__name__}: {short(exc)}")
        if isinstance(exc, (json.JSONDecodeError, ValueError, TypeError, KeyError)):
            # not JSON, or JSON of the wrong shape (pydantic's ValidationError is a
            # ValueError; ChatResponse(**[...]) is a TypeError)
            return LLMError("bad_response", f"unparseable response: {short(exc)}")
        if isinstance(exc, ollama.RequestError):
            return LLMError("internal", short(exc.error))
        return LLMError("internal", f"{type(exc).__name__}: {short(exc)}")


def _canonical(name: str) -> str:
    """Ollama resolves a name without a tag to ``:latest``."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
