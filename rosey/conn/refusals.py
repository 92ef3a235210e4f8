"""The server's refusals: what each one means and the fix an operator applies. Pure.

One source for ``rosey doctor`` (its ✘ lines), conn (the "stopped retrying" log line and
its reminder), ``rosey status`` (which reads the ``reason`` label of ``rosey_conn_fatal``)
and the alert: the same words everywhere, so an operator who read one recognises the
others. The messages are the ones a CyTube 3.86 server sends (docs/cytube/PROTOCOL.md §2,
§3.3, §3.4).

A *fatal* reason is one retrying cannot help: conn stops, stays up and idle (a restart loop
would only spend the per-IP connect and guest-login limits) and says so loudly until
someone fixes the config and runs ``rosey apply`` (which restarts that channel alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeGuard

FatalReason = Literal["registered_name", "bad_password", "no_account", "bad_name",
                      "server_ban", "channel_ban", "no_channel", "channel_password"]
Reason = FatalReason | Literal["guest_rate", "name_in_use", "rate_limited", "unreachable",
                               "login_refused"]

#: every value the ``reason`` label of ``rosey_conn_fatal`` can take (kept few on purpose)
FATAL_REASONS: tuple[FatalReason, ...] = (
    "registered_name", "bad_password", "no_account", "bad_name", "server_ban", "channel_ban",
    "no_channel", "channel_password")

# What went wrong, in a few words ({name}, {domain}, {channel} from the config).
_WHAT: dict[Reason, str] = {
    "registered_name": "the guest name {name} is a registered account on {domain}",
    "bad_password": "{domain} refused the password of {name}",
    "no_account": "there is no account {name} on {domain}",
    "bad_name": "{domain} does not accept the name {name}",
    "server_ban": "this IP is banned on {domain}",
    "channel_ban": "{name} is banned from {channel}",
    "no_channel": "channel {channel} does not exist on {domain}",
    "channel_password": "{channel} needs a channel password",
    "guest_rate": "a guest logged in from this IP less than 60 s ago",
    "name_in_use": "someone in {channel} already uses the name {name}",
    "rate_limited": "{domain} rate-limits connections from this IP",
    "unreachable": "the socket server of {domain} did not answer",
    "login_refused": "{domain} refused the login of {name}",
}

_FIX: dict[Reason, str] = {
    "registered_name": ("that name is an account: give its password (user[1] or "
                        "ROSEY_PASSWORD), or pick a guest name nobody registered in user[0]"),
    "bad_password": "set the bot account's password: user[1] in the config or ROSEY_PASSWORD",
    "no_account": "register {name} on {domain}, or log in as a guest (empty password)",
    "bad_name": ("fix user[0]: 1-20 of a-z, A-Z, 0-9, - and _, and not a name the server "
                 "reserves"),
    "server_ban": "this IP is banned on the server; ask the site admin",
    "channel_ban": ("the bot's name or IP is banned from {channel}; ask a channel moderator "
                    "to unban it"),
    "no_channel": "check `channel` (letters, digits, - and _; as in the /r/ URL)",
    "channel_password": ("set conn.channel_password (or ROSEY_CHANNEL_PASSWORD) to the "
                         "channel's password; rank >= 2 is let in without it"),
    "guest_rate": ("wait 60 s and retry (one guest login per IP per minute; a running Rosey "
                   "counts)"),
    "name_in_use": "someone in the channel uses that name; pick another user[0]",
    "rate_limited": ("wait 10 s and retry: CyTube allows 5 connects per IP, then one per 10 s "
                     "(a running or restarting Rosey uses them too)"),
    "unreachable": "check that the socket server is reachable (a proxy must pass websockets)",
    "login_refused": "fix user[0] (1-20 of a-z, A-Z, 0-9, - and _) and the password",
}

# login {"success": false, "error": …} → reason; the first marker found wins
_LOGIN: tuple[tuple[str, Reason], ...] = (
    ("Invalid username/password", "bad_password"),
    ("User does not exist", "no_account"),
    ("is registered", "registered_name"),
    ("Invalid username", "bad_name"),
    ("is reserved", "bad_name"),
    ("Guest logins are restricted", "guest_rate"),
    ("already in use", "name_in_use"),
)


@dataclass(frozen=True)
class Names:
    """What the texts name: the bot's login name, the site and the channel."""

    name: str
    domain: str
    channel: str


def what(reason: Reason, names: Names) -> str:
    return _WHAT[reason].format(name=names.name, domain=names.domain, channel=names.channel)


def fix(reason: Reason, names: Names) -> str:
    return _FIX[reason].format(name=names.name, domain=names.domain, channel=names.channel)


def is_fatal(reason: Reason | None) -> TypeGuard[FatalReason]:
    return reason in FATAL_REASONS


def login_reason(error: str) -> Reason:
    """The reason behind a failed ``login``'s ``error`` text."""
    return next((reason for marker, reason in _LOGIN if marker in error), "login_refused")


def connect_reason(message: str) -> Reason:
    """A ``connect_error`` message: "You are banned from the server", "Rate limit exceeded"."""
    if "banned" in message.lower():
        return "server_ban"
    if "Rate limit" in message:
        return "rate_limited"
    return "unreachable"


def kick_reason(reason: str) -> FatalReason | None:
    """The fatal reason behind a ``kick`` (channel bans, a bad channel name), else None."""
    if "banned" in reason:  # "You're banned!", "Your IP address is banned from this channel."
        return "channel_ban"
    if "Invalid channel name" in reason:
        return "no_channel"
    return None


def stopped_line(reason: FatalReason, detail: str, names: Names) -> str:
    """The conn log's line (and its reminder) for a stop: what happened, then the fix, in
    the words ``rosey doctor`` uses (" — fix: ")."""
    return f"conn stopped retrying in {names.channel} ({reason}): {detail} — fix: " \
           f"{fix(reason, names)}; " \
           "then run `rosey apply`"
