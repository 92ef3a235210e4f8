"""Moderator commands for chat, people and the playlist (rows of the table in commands.py).

Each playlist or kick command checks, in order: its arguments, the live channel (the item or
person exists), the bot's own rank against the channel's permissions, then sends one typed
action and answers with what the server did. Text for the channel only ever goes through
``say`` (a ``Say``: split, paced and neutralised by conn like any reply).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from rosey.protocol import (
    ActionResult,
    Kick,
    Mute,
    PlaylistAdd,
    PlaylistDelete,
    PlaylistEntry,
    PlaylistJump,
    PlaylistMove,
    PlaylistNext,
    VoteSkip,
)
from rosey.router import perms
from rosey.router.cmdbase import (
    EVERYONE,
    Actor,
    Command,
    CommandContext,
    CommandError,
    as_position,
    mod_context,
    words_of,
)
from rosey.router.media_links import MediaLinkError, parse_media_link
from rosey.router.modctx import ModContext

LIST_MAX = 8  # titles named in one answer


def _quote(item: PlaylistEntry) -> str:
    return f"'{item.title}'"


async def _say(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    text = " ".join(words_of(args, "say <text>"))
    m.require(["chat"], "chat in this channel")
    await m.say(text, "")
    return "said in the channel"


def _present(m: ModContext, name: str) -> tuple[str, float]:
    user = m.channel.users.get(name.lstrip("@").lower())
    if user is None:
        raise CommandError(f"{name} is not in the channel")
    return user.name, user.rank


async def _pm(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    words = words_of(args, "pm <user> <text>", 2)
    name, _ = _present(m, words[0])
    if name.lower() == m.bot_name.lower():
        raise CommandError("CyTube does not let me PM myself")
    await m.say(" ".join(words[1:]), name)
    return f"PM sent to {name}"


async def _users(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    users = sorted(m.channel.users.values(), key=lambda u: (-u.rank, u.name.lower()))
    shown = [u.name + f" ({u.rank:g}" + (", AFK" if u.afk else "") +
             (", muted" if u.muted else "") + ")" for u in users]
    sockets = f" ({m.channel.user_count} connected, guests included)" if m.channel.user_count \
        else ""
    return f"{len(users)} users{sockets}: " + (", ".join(shown) or "nobody")


def _stamp(m: ModContext, when: float) -> str:
    return datetime.fromtimestamp(when, m.tz).strftime("%Y-%m-%d %H:%M %Z")


async def _seen(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    name = words_of(args, "seen <user>")[0].lstrip("@")
    here = m.channel.users.get(name.lower())
    row = await m.seen(name)
    if row is None:
        return f"{here.name} is here now; no history kept" if here else f"I have not seen {name}"
    first, last, messages = row
    where = "here now" if here else f"last seen {_stamp(m, last)}"
    return (f"{here.name if here else name}: {where}; first seen {_stamp(m, first)}; "
            f"{messages} messages")


async def _stats(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    period = args[0].lower() if args else "today"
    if len(args) > 1 or period not in ("today", "week"):
        raise CommandError("usage: stats [today|week]")
    return await mod_context(ctx).stats(period)


async def _np(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    pl = mod_context(ctx).channel.playlist
    now = pl.now_playing()
    if now is None:
        return f"nothing is playing; {len(pl.items)} in the playlist"
    nxt = pl.up_next()
    by = f", queued by {now.queueby}" if now.queueby else ""
    return (f"now playing: {now.title} ({pl.position(now.uid)}/{len(pl.items)}{by})"
            + (f"; next: {nxt.title}" if nxt else ""))


async def _add(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    if not 1 <= len(args) <= 2 or args[1:] not in ([], ["next"]):
        raise CommandError("usage: add <url> [next]")
    try:
        link = parse_media_link(args[0])
    except MediaLinkError as exc:
        raise CommandError(f"can't add {args[0]}: {exc}") from None
    pos: Literal["end", "next"] = "next" if len(args) == 2 else "end"
    m.require(perms.add_nodes(link.type, pos),
              f"add {link.type} media" + (" next" if pos == "next" else ""))
    action = PlaylistAdd(id=m.new_id(), channel=m.channel_name, media_id=link.id,
                         media_type=link.type, pos=pos, temp=False)

    def done(result: ActionResult) -> str:
        pl = m.channel.playlist
        item = next((i for i in reversed(pl.items) if i.id == link.id), None)
        where = f" at position {pl.position(item.uid)} of {len(pl.items)}" if item else ""
        return f"added '{result.detail}'{where}"

    return await m.act(action, done)


def _item(m: ModContext, words: list[str]) -> PlaylistEntry:
    pl = m.channel.playlist
    if len(words) == 1 and words[0].isdigit():
        item = pl.at(as_position(words[0]))
        if item is None:
            raise CommandError(f"there is no position {words[0]}: the playlist has "
                               f"{len(pl.items)} items")
        return item
    found = pl.find(" ".join(words))
    if not found:
        raise CommandError(f"nothing in the playlist matches {' '.join(words)!r}")
    if len(found) > 1:
        names = "; ".join(f"{pl.position(i.uid)}. {i.title}" for i in found[:LIST_MAX])
        raise CommandError(f"{len(found)} items match: {names}; give a position")
    return found[0]


async def _remove(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    item = _item(m, words_of(args, "remove <position|title words>"))
    m.require(["playlistdelete"], "delete from the playlist")
    action = PlaylistDelete(id=m.new_id(), channel=m.channel_name, uid=item.uid)
    return await m.act(action, lambda r: f"removed {_quote(item)}")


async def _move(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    if len(args) != 2:
        raise CommandError("usage: move <from> <to>")
    pl = m.channel.playlist
    item = _item(m, args[:1])
    to = as_position(args[1], "to")
    if to > len(pl.items):
        raise CommandError(f"there is no position {to}: the playlist has {len(pl.items)} items")
    if pl.position(item.uid) == to:
        return f"{_quote(item)} is already at position {to}"
    others = [i for i in pl.items if i.uid != item.uid]
    after: int | str = "prepend" if to == 1 else others[to - 2].uid
    m.require(["playlistmove"], "move playlist items")
    action = PlaylistMove(id=m.new_id(), channel=m.channel_name, uid=item.uid, after=after)
    return await m.act(action, lambda r: f"moved {_quote(item)} to position "
                                         f"{pl.position(item.uid) or to}")


async def _jump(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    if len(args) != 1:
        raise CommandError("usage: jump <position>")
    item = _item(m, args)
    m.require(["playlistjump"], "jump in the playlist")
    action = PlaylistJump(id=m.new_id(), channel=m.channel_name, uid=item.uid)
    return await m.act(action, lambda r: f"now playing {_quote(item)}")


async def _next(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    if m.channel.playlist.now_playing() is None:
        raise CommandError("nothing is playing")
    m.require(["playlistjump"], "skip media")

    def done(result: ActionResult) -> str:
        now = m.channel.playlist.now_playing()
        return f"skipped; now playing {_quote(now)}" if now else "skipped"

    return await m.act(PlaylistNext(id=m.new_id(), channel=m.channel_name), done)


async def _voteskip(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    m.require(["voteskip"], "vote to skip")
    return await m.act(VoteSkip(id=m.new_id(), channel=m.channel_name),
                       lambda r: f"voted to skip ({r.detail})")


async def _kick(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    m = mod_context(ctx)
    words = words_of(args, "kick <user> [reason]")
    name, rank = _present(m, words[0])
    if name.lower() == m.bot_name.lower():
        raise CommandError("I won't kick myself")
    if not actor.is_cli and rank >= actor.rank:
        raise CommandError(f"you can't kick {name}: their rank ({rank:g}) is not below yours "
                           f"({actor.rank:g})")
    m.require(["kick"], "kick")
    if rank >= m.channel.bot_rank:
        raise CommandError(f"I can't kick {name}: CyTube only lets me kick ranks below mine "
                           f"({m.channel.bot_rank:g})")
    action = Kick(id=m.new_id(), channel=m.channel_name, name=name, reason=" ".join(words[1:]))
    return await m.act(action, lambda r: f"kicked {name}")


async def _set_mute(ctx: CommandContext, actor: Actor, args: list[str], muted: bool) -> str:
    m = mod_context(ctx)
    verb = "mute" if muted else "unmute"
    if len(args) != 1:
        raise CommandError(f"usage: {verb} <user>")
    name, rank = args[0].lstrip("@"), 0.0
    if muted:  # the server checks presence and rank for a mute, not for an unmute
        name, rank = _present(m, name)
        if name.lower() == m.bot_name.lower():
            raise CommandError("I won't mute myself")
        if not actor.is_cli and rank >= actor.rank:
            raise CommandError(f"you can't mute {name}: their rank ({rank:g}) is not below "
                               f"yours ({actor.rank:g})")
    m.require(["mute"], verb)
    if muted and rank >= m.channel.bot_rank:
        raise CommandError(f"I can't mute {name}: CyTube only lets me mute ranks below mine "
                           f"({m.channel.bot_rank:g})")
    action = Mute(id=m.new_id(), channel=m.channel_name, name=name, muted=muted)
    return await m.act(action, lambda r: f"{verb}d {name}")


async def _mute(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    return await _set_mute(ctx, actor, args, True)


async def _unmute(ctx: CommandContext, actor: Actor, args: list[str]) -> str:
    return await _set_mute(ctx, actor, args, False)


# name -> (handler, default minimum rank (None: router.command_rank), usage)
MOD_COMMANDS: dict[str, Command] = {
    "say": Command(_say, None, "say <text>"),
    "pm": Command(_pm, None, "pm <user> <text>"),
    "users": Command(_users, 1.5, "users"),
    "seen": Command(_seen, 1.5, "seen <user>"),
    "stats": Command(_stats, None, "stats [today|week]"),
    "np": Command(_np, EVERYONE, "np"),
    "add": Command(_add, None, "add <url> [next]"),
    "remove": Command(_remove, None, "remove <position|title words>"),
    "move": Command(_move, None, "move <from> <to>"),
    "jump": Command(_jump, None, "jump <position>"),
    "next": Command(_next, None, "next"),
    "voteskip": Command(_voteskip, None, "voteskip"),
    "kick": Command(_kick, None, "kick <user> [reason]"),
    "mute": Command(_mute, None, "mute <user>"),
    "unmute": Command(_unmute, None, "unmute <user>"),
}
