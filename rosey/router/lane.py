"""What delivery (router/flow.py) works with: a channel's ``Lane``, a ``Pending`` request,
an ``Offer`` of a reply segment, the ``Answered`` outcome it hands back, and the ``Wire``
its messages leave by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rosey.protocol import Request, Result, Say
from rosey.router.records import Records
from rosey.router.replies import ReplyPolicy


class Wire(Protocol):
    """Where delivery's messages leave: a caller's ROUTER identity, and conn (by Say.channel)."""

    async def send_request(self, identity: bytes, request: Request) -> bool: ...

    async def send_say(self, say: Say) -> bool: ...


@dataclass(frozen=True, slots=True)
class Lane:
    """One channel's terms for its replies (a reload makes a new Lane; accepted requests
    keep the one they came with)."""

    channel: str
    records: Records
    policy: ReplyPolicy
    fallback: str
    post_ttl: float


@dataclass(slots=True)
class Pending:
    user: str
    lane: Lane
    private: bool
    received_at: float


@dataclass(frozen=True, slots=True)
class Answered:
    """A request concluded: what its channel's conversation keeps.  ``text`` is the
    model's answer as posted ("" for a fallback or an error)."""

    channel: str
    user: str
    text: str
    result: Result


@dataclass(slots=True)
class Offer:
    """One reply segment waiting for conn's acknowledgement."""

    say: Say
    received_at: float
    next_at: float = 0.0  # when to offer it again
    taken: int = 0  # offers the socket accepted (conn may still have lost them)
    refused: bool = False  # the last offer could not be sent
