"""The types the command table is made of (rosey/router/commands.py holds the table)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rosey.errors import RoseyError

if TYPE_CHECKING:
    from rosey.router.modctx import ModContext

MOD_RANK = 2.0  # the default of router.command_rank
EVERYONE = -1.0


@dataclass
class Toggles:
    """Operator switches (persisted by the router's store once that exists)."""

    llm_enabled: bool = True
    quiet_until: float = 0.0
    cooldown: float = 10.0
    persona: str = ""
    optouts: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Actor:
    name: str  # "cli" for the control socket
    rank: float  # from the live userlist, never from text; the CLI counts as the owner
    mod_rank: float = MOD_RANK
    # Set only by the control socket: a CyTube user may well be called "cli", and must not
    # get the owner's pass (kicking people who outrank them) by picking that name.
    cli: bool = False

    @property
    def is_mod(self) -> bool:
        return self.rank >= self.mod_rank

    @property
    def is_cli(self) -> bool:
        return self.cli


@dataclass
class CommandContext:
    toggles: Toggles
    now: float
    status: Callable[[], str]
    forget: Callable[[str], None]
    set_cooldown: Callable[[float], None]
    personas: Callable[[], list[str]] = lambda: []
    reload: Callable[[], str] = lambda: "nothing to reload"
    ranks: dict[str, float] = field(default_factory=dict)  # router.command_ranks
    mod: ModContext | None = None  # the live channel, for the moderator commands


class CommandError(RoseyError):
    pass


Handler = Callable[[CommandContext, Actor, list[str]], "str | Awaitable[str]"]


@dataclass(frozen=True)
class Command:
    handler: Handler
    rank: float | None = None  # the default minimum; None: router.command_rank
    usage: str = ""


def mod_context(ctx: CommandContext) -> ModContext:
    if ctx.mod is None:
        raise CommandError("this command needs the live router")
    return ctx.mod


def words_of(args: list[str], usage: str, least: int = 1) -> list[str]:
    if len(args) < least:
        raise CommandError(f"usage: {usage}")
    return args


def as_position(word: str, what: str = "position") -> int:
    try:
        value = int(word)
    except ValueError:
        raise CommandError(f"{what} must be a number (1 is the top of the playlist)") from None
    if value < 1:
        raise CommandError(f"{what} must be 1 or more")
    return value


def unused(*_: Any) -> None:
    """For handlers that ignore part of the common signature."""
