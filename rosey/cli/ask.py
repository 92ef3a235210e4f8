"""``rosey ask "…"``: one question through the real path, without CyTube.

Prompt assembly, limits-free acceptance, the caller's provider call (retries, failover,
pricing), reply post-processing and the conn's splitting all run as in production; the
parts are printed exactly as the channel would receive them.  Nothing is persisted.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from rosey.caller.service import CallerService
from rosey.config import Config
from rosey.config_schema import MESSAGE_LENGTH_DEFAULT
from rosey.conn.governor import Governor
from rosey.conn.split import utf16_len
from rosey.errors import RoseyError
from rosey.protocol import Result, Say
from rosey.router.build import ListWire, build_router
from rosey.router.dispatch import Pool


class AskError(RoseyError):
    pass


@dataclass(frozen=True, slots=True)
class Asked:
    """What ``ask`` printed: the parts the channel would see (the fallback when the model
    failed), whether the model answered, and the one measured latency of its call."""

    parts: list[str]
    ok: bool
    latency: float


async def ask(cfg: Config, question: str, *, as_user: str = "alice", persona: str = "",
              show_prompt: bool = False, out: TextIO = sys.stdout) -> Asked:
    pool = Pool(liveness=float("inf"), queue_max=1)
    wire = ListWire()
    router = build_router(cfg, wire=wire, pool=pool, channels=[cfg])
    core = router.only
    if persona:
        if persona not in core.judge.personas:
            raise AskError(f"unknown persona {persona!r}; router.personas has: "
                           f"{', '.join(sorted(core.judge.personas)) or 'none'}")
        core.conversation.toggles.persona = persona
    caller = CallerService(cfg, 0)
    # Registered under the caller's own name: the flow takes pieces and the result only
    # from the caller that holds the request.
    pool.seen(caller.name.encode(), "ask", 1, time.time())
    caller.load_backends()
    requests, says = wire.requests, wire.says
    await core.answer(as_user, question, False, time.time())
    if not requests:
        raise AskError("the router did not accept the question (is llm.enabled false?)")
    request = requests[0]
    if show_prompt:
        for turn in request.turns:
            print(f"[{turn.role}] {turn.content}", file=out)
        print(file=out)
    started = time.perf_counter()
    result: Result = await caller.call(request, router.on_partial)  # streamed pieces too
    # Measured once, here (as CallerService.handle does in production): the router's
    # "failed after" log line and the summary below print this same number.
    result.latency = time.perf_counter() - started
    await router.on_result(result)
    status = "ok" if result.ok else f"failed: {result.error_kind} {result.error}"
    print(f"model {result.provider}/{result.model}: {status} in {result.latency:.2f} s, "
          f"{result.prompt_tokens}+{result.completion_tokens} tokens, ${result.cost_usd:.6f}",
          file=out)
    parts = conn_parts(says, cfg.conn.message_length or MESSAGE_LENGTH_DEFAULT, cfg.conn.max_parts)
    for index, part in enumerate(parts, 1):
        print(f"[{index}/{len(parts)}, {utf16_len(part)} chars] {part}", file=out)
    await caller_close(caller)
    return Asked(parts, result.ok, result.latency)


def conn_parts(says: list[Say], limit: int, max_parts: int) -> list[str]:
    """The chat messages conn's governor would post for these Says (split, or packed when
    streamed)."""
    governor = Governor(limit=limit, max_parts=max_parts)
    for say in says:
        governor.add(say, 0.0)
    parts = []
    while (part := governor.next_part(0.0)) is not None:
        parts.append(part.text)
    return parts


async def caller_close(caller: CallerService) -> None:
    """Close the SDK clients (their connection pools) before the loop ends."""
    for backend in list(caller._backends.values()):
        await backend.aclose()
    caller._backends.clear()
