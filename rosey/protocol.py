"""The ZeroMQ wire schema shared by conn, router and callers.

This module imports nothing from the rest of Rosey, so every process (and any
tool that speaks to them) can depend on it alone.

Every message is one msgpack frame holding a tagged struct: the field ``k``
names the kind and ``v`` carries the protocol version.  ROUTER sockets prepend
the peer identity frame; that framing is the socket's business, not this
module's.

Frames by socket (binder is always the router process):

``ipc://RUN/conn``  conn DEALER (identity ``conn:<channel>:<session>``) <-> router ROUTER
    up:   Chat, Pm, UserJoined, UserLeft, UserList, RankChanged, ConnState,
          Delivered, MediaChanged, UserMeta, UserCount, Playlist,
          PlaylistQueued, PlaylistDeleted, PlaylistMoved,
          PlaylistTemp, PlaylistCurrent, ChannelPermissions, ActionResult
    down: Say, and the typed moderator actions PlaylistAdd, PlaylistDelete,
          PlaylistMove, PlaylistJump, PlaylistNext, VoteSkip, Kick, Mute (never built
          from model output: only the command table makes them)

``ipc://RUN/work``  caller DEALER (identity ``caller-<n>``) <-> router ROUTER
    up:   Ready, Heartbeat, Partial, Result
    down: Request

``ipc://RUN/control``  CLI DEALER <-> router ROUTER
    CtlRequest / CtlReply
"""

from __future__ import annotations

from typing import Literal

import msgspec

# The base and the moderation messages live in sibling modules that import nothing else of Rosey.
from rosey.protocol_base import PROTOCOL_VERSION, DecodeError, Message
from rosey.protocol_moderation import (
    ACTIONS,
    Action,
    ActionResult,
    ChannelPermissions,
    Kick,
    Mute,
    Playlist,
    PlaylistAdd,
    PlaylistCurrent,
    PlaylistDelete,
    PlaylistDeleted,
    PlaylistEntry,
    PlaylistJump,
    PlaylistMove,
    PlaylistMoved,
    PlaylistNext,
    PlaylistQueued,
    PlaylistTemp,
    VoteSkip,
)

# Re-exported: every process imports the whole schema from here.
__all__ = [
    "ACTIONS", "PROTOCOL_VERSION", "Action", "ActionResult", "ChannelPermissions", "DecodeError",
    "Kick", "Message", "Mute", "Playlist", "PlaylistAdd", "PlaylistCurrent", "PlaylistDelete",
    "PlaylistDeleted", "PlaylistEntry", "PlaylistJump", "PlaylistMove", "PlaylistMoved",
    "PlaylistNext", "PlaylistQueued", "PlaylistTemp", "VoteSkip",
]


# ---- conn -> router -------------------------------------------------------


class Chat(Message, tag="chat"):
    """A live public chat line, already HTML-reversed to plain text."""

    channel: str
    username: str
    text: str
    time: int  # server epoch ms
    received_at: float = 0.0  # conn's wall clock (s) when the frame arrived


class Pm(Message, tag="pm"):
    channel: str
    username: str
    text: str
    time: int
    received_at: float = 0.0


class User(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    rank: float = 0
    afk: bool = False
    muted: bool = False
    aliases: list[str] = []


class UserJoined(Message, tag="user_joined"):
    channel: str
    user: User


class UserLeft(Message, tag="user_left"):
    channel: str
    name: str


class UserList(Message, tag="user_list"):
    channel: str
    users: list[User]


class RankChanged(Message, tag="rank_changed"):
    channel: str
    name: str
    rank: float


ConnStateName = Literal["connecting", "joined", "disconnected", "fatal"]


class ConnState(Message, tag="conn_state"):
    channel: str
    state: ConnStateName
    bot_name: str = ""
    bot_rank: float = -1
    detail: str = ""


class Delivered(Message, tag="delivered"):
    """The outcome of one Say segment ``(say_id, seq)``: confirmed by its echo(es), or given
    up.  conn answers every offer of a segment it has finished with the same Delivered, so
    the router can re-offer until it hears one (docs/ARCHITECTURE.md "Delivery")."""

    channel: str
    say_id: str
    ok: bool
    parts: int = 0
    reason: str = ""
    seq: int = 0


# ---- router -> conn -------------------------------------------------------


class Say(Message, tag="say"):
    """Text for the channel (or a PM when ``pm_to`` is set).

    conn splits it to the server's length limit; ``expires_at`` (epoch s) is
    the delivery deadline after which it is dropped and reported undelivered.

    The unit of delivery is a *segment*: one reply (``id``) is one or more Says numbered
    ``seq`` 0, 1, … in posting order, the last with ``final``.  A plain reply is the single
    segment (seq 0, final).  The router re-offers a segment until conn acknowledges that
    ``(id, seq)`` with a Delivered; conn posts each segment at most once (docs/ARCHITECTURE.md
    "Delivery").
    """

    id: str
    channel: str
    text: str
    pm_to: str = ""
    expires_at: float = 0.0
    # Delivery order inside conn's governor: lower goes first. Replies to people are 0
    # (the default); operator notices and other chatter should use PRIORITY_OTHER.
    priority: int = 0
    seq: int = 0  # segment number within the reply ``id``
    final: bool = True  # the reply's last segment
    # A streamed reply: conn packs its segments' text into chat messages as it arrives
    # (conn/packer.py) instead of splitting each segment on its own.
    stream: bool = False


PRIORITY_REPLY = 0
PRIORITY_OTHER = 1


# ---- caller <-> router ----------------------------------------------------


class Ready(Message, tag="ready"):
    caller: str
    incarnation: str
    slots: int


class Heartbeat(Message, tag="heartbeat"):
    """Also a late Ready: a restarted router learns the pool from heartbeats."""

    caller: str
    incarnation: str
    slots: int


class Turn(msgspec.Struct, array_like=True):
    role: Literal["system", "user", "assistant"]
    content: str


class Request(Message, tag="request"):
    id: str
    deadline: float  # epoch seconds; the caller must answer before it
    provider: str
    model: str
    turns: list[Turn]
    # The model host the router chose (rosey/router/endpoints.py): its name and URL ("" :
    # the provider's configured default).  ``hand_back``: the router has another endpoint
    # for this request, so on an endpoint failure the caller answers at once (no retry or
    # failover on a dead host) and the router runs it elsewhere.
    endpoint: str = ""
    endpoint_url: str = ""
    hand_back: bool = False


ErrorKind = Literal[
    "",
    "timeout",
    "connection",
    "auth",
    "not_found",
    "rate_limited",
    "server",
    "bad_response",
    "empty",
    "internal",
]


class Result(Message, tag="result"):
    id: str
    caller: str
    ok: bool
    text: str = ""
    error_kind: ErrorKind = ""
    error: str = ""
    provider: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    # Estimated USD from tokens and budget.prices (0 when the model has no price); the
    # router adds it to the budget.
    cost_usd: float = 0.0
    attempts: int = 0  # provider calls made (retries and failover included)
    endpoint: str = ""  # the endpoint that answered or failed ("" : the provider's default)
    # The request's own endpoint failed (connection, HTTP 5xx, timeout; not a model error)
    # before any Partial went out: the router marks the endpoint and, if the request had
    # ``hand_back``, runs it on another endpoint.
    endpoint_failed: bool = False


class Partial(Message, tag="partial"):
    """A streamed piece of an answer, sent before its Result.

    ``seq`` counts from 0 without gaps per request id; ``text`` is the new text since the
    previous Partial (not the whole answer so far), cut by the caller at a sentence end or
    when enough text has accumulated.  The final Result still carries the whole ``text``;
    the router posts only what its Partials did not already cover.  A receiver keeps the
    highest ``seq`` it has applied per id and ignores a repeat (idempotent re-offer).
    """

    id: str
    caller: str
    seq: int
    text: str


# ---- control --------------------------------------------------------------


class CtlRequest(Message, tag="ctl"):
    command: str
    args: list[str] = []  # noqa: RUF012 - a msgspec Struct field (the base is imported)
    actor: str = "cli"
    # The channel it acts on; "" means the only one (with several, the router answers with
    # their names).
    channel: str = ""


class CtlReply(Message, tag="ctl_reply"):
    ok: bool
    text: str


# ---- conn -> router: channel state -----------------------------------------


class MediaChanged(Message, tag="media_changed"):
    """``changeMedia``: what plays now. ``title`` is verbatim (the server does not escape it)."""

    channel: str
    title: str
    id: str
    type: str
    seconds: float = 0.0


class UserMeta(Message, tag="user_meta"):
    """``setUserMeta`` (AFK, mute, shadow mute), also for names not seen yet."""

    channel: str
    name: str
    afk: bool = False
    muted: bool = False
    smuted: bool = False


class UserCount(Message, tag="user_count"):
    """``usercount``: sockets in the channel, anonymous ones included (at most every 10 s)."""

    channel: str
    count: int


AnyMessage = (
    Chat
    | Pm
    | UserJoined
    | UserLeft
    | UserList
    | RankChanged
    | ConnState
    | Delivered
    | Say
    | Ready
    | Heartbeat
    | Request
    | Result
    | Partial
    | CtlRequest
    | CtlReply
    | MediaChanged
    | UserMeta
    | UserCount
    | Playlist
    | PlaylistQueued
    | PlaylistDeleted
    | PlaylistMoved
    | PlaylistTemp
    | PlaylistCurrent
    | ChannelPermissions
    | ActionResult
    | PlaylistAdd
    | PlaylistDelete
    | PlaylistMove
    | PlaylistJump
    | PlaylistNext
    | VoteSkip
    | Kick
    | Mute
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyMessage)
_version_probe = msgspec.msgpack.Decoder(dict)


def encode(msg: Message) -> bytes:
    return _encoder.encode(msg)


def decode(data: bytes) -> AnyMessage:
    """Decode one frame; any malformed or foreign frame raises DecodeError."""
    try:
        msg = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        version = _peek_version(data)
        if version is not None and version != PROTOCOL_VERSION:
            raise DecodeError(f"protocol version {version}, expected {PROTOCOL_VERSION}") from exc
        raise DecodeError(str(exc)) from exc
    if msg.v != PROTOCOL_VERSION:
        raise DecodeError(f"protocol version {msg.v}, expected {PROTOCOL_VERSION}")
    return msg


def _peek_version(data: bytes) -> int | None:
    try:
        raw = _version_probe.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    version = raw.get("v")
    return version if isinstance(version, int) else None
