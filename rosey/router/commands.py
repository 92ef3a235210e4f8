"""One command table for ``rosey ctl <cmd>`` and mod PMs ``!<cmd>``. Pure over a small state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MOD_RANK = 2.0  # the default of router.command_rank


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
    rank: float  # the CLI counts as the channel owner
    mod_rank: float = MOD_RANK

    @property
    def is_mod(self) -> bool:
        return self.rank >= self.mod_rank


@dataclass
class CommandContext:
    toggles: Toggles
    now: float
    status: Callable[[], str]
    forget: Callable[[str], None]
    set_cooldown: Callable[[float], None]
    personas: Callable[[], list[str]] = lambda: []
    reload: Callable[[], str] = lambda: "nothing to reload"


Handler = Callable[[CommandContext, Actor, list[str]], str]


def _status(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    return ctx.status()


def _llm(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    if args not in (["on"], ["off"]):
        raise CommandError("usage: llm on|off")
    ctx.toggles.llm_enabled = args[0] == "on"
    return f"LLM replies {'enabled' if ctx.toggles.llm_enabled else 'disabled'}"


def _quiet(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    minutes = _number(args, "usage: quiet <minutes> (0 ends it)")
    ctx.toggles.quiet_until = ctx.now + minutes * 60 if minutes > 0 else 0.0
    return f"quiet for {minutes:g} min" if minutes > 0 else "quiet ended"


def _cooldown(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    seconds = _number(args, "usage: cooldown <seconds>")
    ctx.set_cooldown(seconds)
    ctx.toggles.cooldown = seconds
    return f"per-user cooldown set to {seconds:g} s"


def _forget(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    if args == ["me"] and actor.name != "cli":
        ctx.forget(actor.name)
        return "I forgot our conversation"
    if len(args) != 1:
        raise CommandError("usage: forget <user>")
    if not actor.is_mod:
        raise CommandError("only moderators may make me forget someone else")
    ctx.forget(args[0])
    return f"forgot {args[0]}"


def _persona(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    names = ctx.personas()
    if len(args) != 1 or (args[0] not in names and args[0] != "default"):
        raise CommandError("usage: persona <name>; personas: " + ", ".join(["default", *names]))
    ctx.toggles.persona = "" if args[0] == "default" else args[0]
    return f"persona set to {args[0]}"


def _reload(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    return ctx.reload()


def _optout(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    ctx.toggles.optouts.add(actor.name.lower())
    ctx.forget(actor.name)
    return "OK: I will not answer or remember you (!optin undoes this)"


def _optin(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    ctx.toggles.optouts.discard(actor.name.lower())
    return "OK: welcome back"


class CommandError(Exception):
    pass


def _number(args: list[str], usage: str) -> float:
    try:
        value = float(args[0]) if len(args) == 1 else -1.0
    except ValueError:
        value = -1.0
    if value < 0:
        raise CommandError(usage)
    return value


# name -> (handler, needs a moderator)
COMMANDS: dict[str, tuple[Handler, bool]] = {
    "status": (_status, True),
    "llm": (_llm, True),
    "quiet": (_quiet, True),
    "cooldown": (_cooldown, True),
    "persona": (_persona, True),
    "reload": (_reload, True),
    "forget": (_forget, False),
    "optout": (_optout, False),
    "optin": (_optin, False),
}


def execute(ctx: CommandContext, actor: Actor, line: str) -> tuple[bool, str]:
    """Run one command line; returns (ok, reply text)."""
    words = line.split()
    if not words:
        return False, "commands: " + ", ".join(COMMANDS)
    name, args = words[0].lower(), words[1:]
    entry = COMMANDS.get(name)
    if entry is None:
        return False, f"unknown command {name!r}; commands: " + ", ".join(COMMANDS)
    handler, mod_only = entry
    if mod_only and not actor.is_mod:
        return False, f"{name} is for moderators"
    try:
        return True, handler(ctx, actor, args)
    except CommandError as exc:
        return False, str(exc)
