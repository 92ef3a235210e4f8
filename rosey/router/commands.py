"""One command table for ``rosey ctl <cmd>`` and mod PMs ``!<cmd>``. Pure over a small state."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable

from rosey.router.cmdbase import (
    EVERYONE,
    MOD_RANK,
    Actor,
    Command,
    CommandContext,
    CommandError,
    Toggles,
)
from rosey.router.modcmds import MOD_COMMANDS

__all__ = ["COMMANDS", "MOD_RANK", "Actor", "CommandContext", "CommandError", "Toggles",
           "execute", "required_rank", "run"]



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
    if args == ["me"] and not actor.is_cli:
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


def _number(args: list[str], usage: str) -> float:
    try:
        value = float(args[0]) if len(args) == 1 else -1.0
    except ValueError:
        value = -1.0
    if value < 0:
        raise CommandError(usage)
    return value


def _help(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    """The names the sender may use (one PM); ``help <command>`` gives its usage."""
    if args:
        name = args[0].lower().lstrip("!")
        if name not in COMMANDS:
            raise CommandError(f"unknown command {name!r}")
        return f"{COMMANDS[name].usage or name} (rank {required_rank(ctx, actor, name):g})"
    mine = [name for name in COMMANDS if may_use(ctx, actor, name)]
    return "you may use: " + ", ".join(mine) + " (help <command> for its usage)"


# The one command table: `rosey ctl <cmd>` and PM `!<cmd>`. A rank of None means
# router.command_rank (moderators); router.command_ranks overrides any row by name.
COMMANDS: dict[str, Command] = {
    "status": Command(_status, None, "status"),
    "llm": Command(_llm, None, "llm on|off"),
    "quiet": Command(_quiet, None, "quiet <minutes>"),
    "cooldown": Command(_cooldown, None, "cooldown <seconds>"),
    "persona": Command(_persona, None, "persona <name>"),
    "reload": Command(_reload, None, "reload"),
    **MOD_COMMANDS,
    "forget": Command(_forget, EVERYONE, "forget me"),
    "optout": Command(_optout, EVERYONE, "optout"),
    "optin": Command(_optin, EVERYONE, "optin"),
    "help": Command(_help, EVERYONE, "help [command]"),
}


def required_rank(ctx: CommandContext, actor: Actor, name: str) -> float:
    if name in ctx.ranks:
        return ctx.ranks[name]
    rank = COMMANDS[name].rank
    return actor.mod_rank if rank is None else rank


def may_use(ctx: CommandContext, actor: Actor, name: str) -> bool:
    return actor.rank >= required_rank(ctx, actor, name)


def _lookup(ctx: CommandContext, actor: Actor, line: str) -> tuple[str, list[str], str]:
    """(name, args, refusal): refusal is "" when the actor may run it."""
    words = line.split()
    if not words:
        return "", [], "commands: " + ", ".join(COMMANDS)
    name, args = words[0].lower(), words[1:]
    if name not in COMMANDS:
        return name, args, f"unknown command {name!r}; !help lists yours"
    if not may_use(ctx, actor, name):
        need = required_rank(ctx, actor, name)
        return name, args, f"{name} needs rank {need:g} (yours is {actor.rank:g})"
    return name, args, ""


def waits(line: str) -> bool:
    """Whether this line's command may wait (for the server or the database)."""
    words = line.split()
    command = COMMANDS.get(words[0].lower()) if words else None
    return command is not None and inspect.iscoroutinefunction(command.handler)


def execute(ctx: CommandContext, actor: Actor, line: str) -> tuple[bool, str]:
    """Run one command line whose handler is synchronous; returns (ok, reply text)."""
    name, args, refusal = _lookup(ctx, actor, line)
    if refusal:
        return False, refusal
    try:
        result = COMMANDS[name].handler(ctx, actor, args)
    except CommandError as exc:
        return False, str(exc)
    if inspect.isawaitable(result):
        _close(result)
        return False, f"{name} needs the live router"
    return True, result


async def run(ctx: CommandContext, actor: Actor, line: str) -> tuple[bool, str]:
    """Run one command line, waiting for it if it talks to the server."""
    name, args, refusal = _lookup(ctx, actor, line)
    if refusal:
        return False, refusal
    try:
        result = COMMANDS[name].handler(ctx, actor, args)
        if inspect.isawaitable(result):
            result = await result
    except CommandError as exc:
        return False, str(exc)
    return True, result


def _close(result: Awaitable[str]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
