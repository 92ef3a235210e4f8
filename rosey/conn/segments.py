"""What the outbound governor tracks: chat parts, reply segments and their outcomes.

A reply is delivered in segments ``(id, seq)`` (docs/ARCHITECTURE.md "Delivery"); conn
splits each into chat parts.  Kept apart from ``governor`` so conn's post ledger can name
them without the governor's pacing and resolution logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SegKey = tuple[str, int]  # (Say id, seq)


@dataclass(slots=True, eq=False)  # identity: two parts may hold the same text
class Part:
    say_id: str
    text: str
    pm_to: str
    index: int
    expires_at: float
    priority: int = 0
    sent_at: float = 0.0
    resends: int = 0
    echo: bool = True  # False for a command such as /afk: the server never echoes it
    maybe_sent: bool = False  # emitted on a socket that died before its echo came
    seq: int = 0

    @property
    def key(self) -> SegKey:
        return (self.say_id, self.seq)


@dataclass(slots=True)
class Outcome:
    say_id: str
    ok: bool
    parts: int
    reason: str = ""
    unsent: int = 0  # parts dropped before being confirmed (for the expiry metric)
    received_at: float | None = None  # when the Say arrived (for the governor wait metric)
    seq: int = 0


@dataclass(slots=True)
class Prior:
    """What a previous conn did with a segment: its split, and which parts it emitted (with
    the time) and saw echoed."""

    parts: list[str]
    emitted: dict[int, float] = field(default_factory=dict)
    confirmed: set[int] = field(default_factory=set)
    # Set for a streamed segment whose text rode on a later segment's part: the parts
    # above are that carrier's, and the segment is finished with it.
    carrier: int | None = None


@dataclass(slots=True)
class Tracked:
    total: int
    confirmed: int = 0
    received_at: float = 0.0
    parts: list[str] = field(default_factory=list)
    riders: list[int] = field(default_factory=list)  # segments finished with this one
    held: bool = False  # streamed, with text still in the packer: finished as a rider
