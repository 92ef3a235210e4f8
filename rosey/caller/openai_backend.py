"""OpenAI (and OpenAI-compatible) chat completions.

Every SDK argument is explicit: the SDK otherwise fills ``api_key``, ``base_url``,
``organization``, ``project``, ``admin_api_key``, ``webhook_secret`` and extra headers
from ``OPENAI_*`` environment variables, and Rosey's config module is the only place
that reads the environment (docs/DECISIONS.md).  ``max_retries=0``: the caller retries within
the request deadline itself.  Importing this module imports ``openai`` (~58 MiB RSS).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import openai

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

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIBackend:
    """``POST {base_url}/chat/completions`` through ``openai.AsyncOpenAI``.

    ``max_tokens`` is sent as ``max_completion_tokens`` to api.openai.com (its reasoning
    models reject ``max_tokens``) and as ``max_tokens`` to any other ``base_url``
    (OpenAI-compatible servers such as Ollama's /v1 or llama.cpp know only that one).
    ``temperature`` is sent only when set (reasoning models reject anything but 1).
    ``client_timeout`` is the SDK's default for a request without its own deadline;
    ``complete`` and ``check`` always pass theirs.
    """

    name = "openai"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        organization: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        headers: dict[str, str] | None = None,
        *,
        client_timeout: float = 60.0,
    ) -> None:
        if not api_key:
            # An empty key would make the SDK fall back to OPENAI_API_KEY.  Servers that
            # need no key (local OpenAI-compatible ones) accept any placeholder.
            raise ValueError(
                "OpenAIBackend needs a non-empty api_key (any placeholder works "
                "for a local server that does not check keys)"
            )
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_tokens_field = (
            "max_completion_tokens" if self.base_url == DEFAULT_BASE_URL else "max_tokens"
        )
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=self.base_url,
            organization=organization,
            project=None,
            admin_api_key=None,
            webhook_secret=None,
            max_retries=0,
            timeout=client_timeout,
            default_headers=dict(headers or {}),
        )
        _scrub_ambient(self._client, organization)

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.max_tokens is not None:
            extra[self.max_tokens_field] = self.max_tokens
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        return extra

    async def complete(self, turns: list[Turn], model: str, timeout: float) -> Completion:
        extra = self._extra()
        try:
            # The SDK's timeout is per phase (connect / read / ...) and the server may
            # trickle; asyncio.timeout makes ``timeout`` a hard deadline for the whole call.
            async with asyncio.timeout(timeout):
                response = await self._client.chat.completions.create(
                    model=model,
                    messages=turns_to_messages(turns),  # type: ignore[arg-type]
                    stream=False,
                    timeout=timeout,
                    **extra,
                )
        except TimeoutError:
            raise LLMError(
                "timeout", f"no answer from {self.base_url} within {timeout:g}s"
            ) from None
        except openai.OpenAIError as exc:
            raise _classify(exc, self.base_url, model) from exc
        except ValueError as exc:  # a 2xx body that is not JSON
            raise LLMError("bad_response", f"unparseable response: {short(exc)}") from exc
        return _completion(response, model)

    async def stream(self, turns: list[Turn], model: str, timeout: float,
                     on_text: OnText) -> Completion:
        """``stream=True`` with ``include_usage``: the server sends ``data:`` chunks whose
        ``choices[0].delta.content`` is the next text, then one chunk with ``choices: []``
        and the ``usage`` of the whole call, then ``data: [DONE]``."""
        texts: list[str] = []
        usage: object = None
        reported = model
        try:
            async with asyncio.timeout(timeout):
                chunks = await self._client.chat.completions.create(  # type: ignore[call-overload]
                    model=model,
                    messages=turns_to_messages(turns),
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=timeout,
                    **self._extra(),
                )
                async with chunks:  # closes the response on any exit (timeout, error)
                    async for chunk in chunks:
                        reported = str(getattr(chunk, "model", None) or reported)
                        usage = getattr(chunk, "usage", None) or usage
                        for choice in getattr(chunk, "choices", None) or []:
                            content = getattr(getattr(choice, "delta", None), "content", None)
                            if content:
                                texts.append(content)
                                await on_text(content)
        except TimeoutError:
            got = "" if not texts else f" (after {len(texts)} chunks)"
            raise LLMError(
                "timeout", f"no complete answer from {self.base_url} within {timeout:g}s{got}"
            ) from None
        except openai.OpenAIError as exc:
            raise _classify(exc, self.base_url, model) from exc
        except ValueError as exc:  # a chunk that is not JSON
            raise LLMError("bad_response", f"unparseable chunk: {short(exc)}") from exc
        text = "".join(texts)
        if not text.strip():
            raise LLMError("empty", "the model streamed no text")
        return Completion(text=text, prompt_tokens=_int(getattr(usage, "prompt_tokens", 0)),
                          completion_tokens=_int(getattr(usage, "completion_tokens", 0)),
                          model=reported)

    async def check(self, model: str, timeout: float = 5.0) -> Health:
        where = f"openai at {self.base_url}"
        try:
            async with asyncio.timeout(timeout):
                page = await self._client.models.list(timeout=timeout)
            names = sorted(str(getattr(item, "id", "")) for item in (page.data or []))
        except TimeoutError:
            return Health(False, f"{where}: no answer within {timeout:g}s")
        except openai.OpenAIError as exc:
            err = _classify(exc, self.base_url, model)
            if err.kind == "auth":
                return Health(False, f"{where}: API key rejected ({err.status}): {err.message}")
            if err.kind == "connection":
                return Health(False, f"{where}: unreachable: {err.message}")
            return Health(False, f"{where}: {err}")
        except Exception as exc:  # check() never raises
            return Health(False, f"{where}: unexpected {type(exc).__name__}: {short(exc)}")
        if model in names:
            return Health(True, f"{where}: key accepted, model {model} present")
        return Health(
            False, f"{where}: key accepted, but model {model} not found (have: {list_names(names)})"
        )

    async def aclose(self) -> None:
        await self._client.close()


def _scrub_ambient(client: openai.AsyncOpenAI, organization: str | None) -> None:
    """Undo what the SDK's constructor took from the environment despite explicit args.

    ``organization=None`` / ``project=None`` mean "read OPENAI_ORG_ID / OPENAI_PROJECT_ID"
    to the SDK, and OPENAI_CUSTOM_HEADERS is merged into the default headers.
    """
    client.organization = organization
    client.project = None
    client.admin_api_key = None
    client.webhook_secret = None
    if os.environ.get("OPENAI_CUSTOM_HEADERS") is not None:
        # No public way to refuse them; these attributes exist since openai 1.x.
        if isinstance(getattr(client, "_custom_headers", None), dict):
            client._custom_headers = {}
        if hasattr(client, "_ambient_authorizations"):
            client._ambient_authorizations = frozenset()


def _classify(exc: openai.OpenAIError, base_url: str, model: str) -> LLMError:
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", f"{base_url}: request timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = short(cause) if cause is not None else exc.message
        return LLMError("connection", f"cannot reach {base_url}: {detail}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = _error_message(exc)
        kind = kind_for_status(status)
        if kind == "not_found":
            return LLMError(kind, f"model {model} or endpoint not found: {message}", status=status)
        if kind == "rate_limited":
            # insufficient_quota is a billing stop, not a burst: waiting will not help.
            futile = exc.code == "insufficient_quota"
            return LLMError(
                kind,
                message,
                status=status,
                retry_after=parse_retry_after(exc.response.headers),
                retryable=False if futile else None,
            )
        return LLMError(kind, message, status=status)
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMError("bad_response", short(exc.message), status=exc.status_code)
    if isinstance(exc, openai.APIError):  # an ``error`` object in the middle of a stream
        return LLMError("server", f"{base_url}: {short(exc.message)}")
    return LLMError("internal", f"{type(exc).__name__}: {short(exc)}")


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return short(inner["message"])
        if isinstance(inner, str):
            return short(inner)
    return short(exc.message)


def _completion(response: object, model: str) -> Completion:
    """Read text and usage defensively: a non-strict SDK hands back whatever came."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise LLMError("bad_response", f"no choices in the response: {short(response, 120)}")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise LLMError("bad_response", f"message content is {type(content).__name__}")
    if not content or not content.strip():
        reason = getattr(choices[0], "finish_reason", None)
        refusal = getattr(message, "refusal", None)
        why = f"refusal: {short(refusal)}" if refusal else f"finish_reason={reason}"
        raise LLMError("empty", f"the model returned no text ({why})")
    usage = getattr(response, "usage", None)
    return Completion(
        text=content,
        prompt_tokens=_int(getattr(usage, "prompt_tokens", 0)),
        completion_tokens=_int(getattr(usage, "completion_tokens", 0)),
        model=str(getattr(response, "model", None) or model),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
