"""Seeded bad inputs for the fuzz tests: mutated CyTube frames and IPC messages. Pure.

Frames are the server frames recorded in tests/data/cytube-transcript.jsonl, mutated (wrong
types, missing fields, huge strings, unicode junk, nested garbage, wrong or unknown event
names, one event's payload under another's name). IPC messages are valid messages of every
kind, mutated the same way and packed by hand (so they can hold what msgspec would refuse to
write: invalid UTF-8, a wrong version), plus raw bytes, truncations and extra frames.

Each input comes with the verdict the process must reach (the oracle is the pure parser, run
on exactly what crosses the wire), so a test can demand one count per bad input. Inputs the
process would accept and act upon (a mention, a kick, a valid caller Ready) are drawn again:
the fuzz must not change what the bot does next, only prove it survives and counts.
"""

from __future__ import annotations

import copy
import json
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from rosey import protocol as p
from rosey.conn import events as ev
from tests.transcript import LIFECYCLE_EVENTS, frames

Verdict = Literal["malformed", "unknown", "valid"]
Path = tuple[str | int, ...]

JUNK = ["\ud800", "\udfff", "\u202e", "\u200b", "\x00", "\ufeff", "\U0001f389", "e\u0301",
        "\uffff", "\U0001d54f", "<script>", "&amp;", "\\", '"', "\n", "%s", "{}", "\x7f",
        "\u0000\u0001", "ﷺ", "𒐫", "\u2028"]
RESERVED = frozenset({"connect", "connect_error", "disconnect", "__disconnect_final"})
# Valid frames of these events only update state the bot does not act on.
STATE_ONLY = frozenset({
    "usercount", "setLeader", "mediaUpdate", "setPlaylistMeta", "playlist", "queue", "delete",
    "moveVideo", "setTemp", "setCurrent", "drinkCount", "voteskip", "clearVoteskipVote",
    "setPermissions", "channelRanks", "announcement", "validationPassed", "validationError",
    "queueFail", "queueWarn", "channelRankFail", "setPlaylistLocked", "changeMedia",
    "channelNotRegistered", "cancelNeedPassword", "chatMsg", "addUser", "setUserRank",
    "setUserProfile", "userLeave"}) | ev.IGNORED_EVENTS


def _paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _get(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


def _replace(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(value)
    _get(out, path[:-1])[path[-1]] = new
    return out


def _delete(value: Any, path: Path) -> Any:
    out = copy.deepcopy(value)
    del _get(out, path[:-1])[path[-1]]
    return out


class Mutator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def junk(self) -> str:
        return "".join(self.rng.choice(JUNK) for _ in range(self.rng.randint(1, 40)))

    def huge(self) -> str:
        return self.rng.choice("aé🎉<&/ ") * self.rng.randint(2_000, 20_000)

    def scalar(self) -> Any:
        return self.rng.choice([None, True, False, 0, -1, 2**53 + 1, 10**30, -0.0, 1.5e308,
                                "", "x", "1", [], {}, [None], {"": None}])

    def garbage(self, depth: int) -> Any:
        """Nested lists and objects ``depth`` deep (branching only near the leaves)."""
        if depth <= 0:
            return self.scalar()
        width = self.rng.randint(1, 3) if depth <= 3 else 1
        if self.rng.random() < 0.5:
            return [self.garbage(depth - 1) for _ in range(width)]
        keys = ["name", "msg", "meta", "k", "v", "", "\ud800", "\u202e"]
        return {self.rng.choice(keys): self.garbage(depth - 1) for _ in range(width)}

    def wrong_type(self, value: Any) -> Any:
        while True:
            new = self.scalar()
            if type(new) is not type(value):
                return new

    def mutate(self, value: Any) -> tuple[str, Any]:
        """One structural mutation somewhere in ``value`` (a JSON-like tree)."""
        rng = self.rng
        paths = list(_paths(value))
        kind = rng.choices(["wrong_type", "missing_field", "huge_string", "unicode_junk",
                            "nested_garbage"], weights=[8, 6, 1, 6, 4])[0]
        if kind == "missing_field":
            keyed = [path for path in paths if path and isinstance(_get(value, path[:-1]), dict)]
            if keyed:
                return kind, _delete(value, rng.choice(keyed))
            kind = "wrong_type"
        path = rng.choice(paths)
        if kind == "wrong_type":
            return kind, _replace(value, path, self.wrong_type(_get(value, path)))
        if kind == "huge_string":
            return kind, _replace(value, path, self.huge())
        if kind == "unicode_junk":
            strings = [q for q in paths if isinstance(_get(value, q), str)] or [path]
            path = rng.choice(strings)
            old = _get(value, path)
            return kind, _replace(value, path, self.junk() + (old if isinstance(old, str) else ""))
        return kind, _replace(value, path, self.garbage(rng.randint(2, 25)))


# ---- CyTube frames ------------------------------------------------------------------------


@dataclass(frozen=True)
class BadFrame:
    event: str
    data: Any
    mutation: str
    verdict: Verdict

    @property
    def label(self) -> str:
        """The ``event`` label conn counts it under."""
        return self.event if self.event in ev.KNOWN_EVENTS else "other"


def recorded_frames() -> list[tuple[str, Any]]:
    return [(f["event"], f["data"]) for f in frames(direction="in")
            if f["event"] not in LIFECYCLE_EVENTS]


def wire(data: Any) -> Any:
    """What the client decodes after socket.io's JSON (tuples → lists, int keys → str)."""
    return json.loads(json.dumps(data))


def frame_verdict(event: str, data: Any) -> Verdict:
    try:
        frame = ev.parse_frame(event, data)
    except ev.FrameError:
        return "malformed"
    return "unknown" if isinstance(frame, ev.UnknownFrame) else "valid"


def harmless(event: str, data: Any, bot: str) -> bool:
    """A valid frame the bot takes no action on (no reply, no kick, no mute, no login)."""
    if event not in STATE_ONLY:
        return False
    frame = ev.parse_frame(event, data)
    names = [getattr(frame, "username", ""), getattr(frame, "name", "")]
    if isinstance(frame, ev.AddUserFrame):
        names.append(frame.user.name)
    if any(name.casefold() == bot.casefold() for name in names if isinstance(name, str)):
        return False
    text = getattr(frame, "text", "") + getattr(frame, "msg_html", "")
    folded = text.casefold()
    return "rosey" not in folded and not text.lstrip().startswith("!")


def bad_frames(seed: int, count: int, bot: str) -> list[BadFrame]:
    rng = random.Random(seed)
    mut = Mutator(rng)
    base = recorded_frames()
    known = sorted(ev.KNOWN_EVENTS)
    out: list[BadFrame] = []
    while len(out) < count:
        event, data = rng.choice(base)
        roll = rng.random()
        if roll < 0.08:
            mutation = "wrong_event"
            event = rng.choice([event.swapcase(), event + "x", event[:-1], " " + event,
                                event + mut.junk()])
        elif roll < 0.13:
            mutation, event, data = "unknown_event", mut.junk(), mut.garbage(rng.randint(0, 6))
        elif roll < 0.2:
            mutation, event = "swapped_event", rng.choice(known)
        else:
            mutation, data = mut.mutate(data)
        if event in RESERVED or not event:
            continue
        data = wire(data)
        verdict = frame_verdict(event, data)
        if verdict == "valid" and not harmless(event, data, bot):
            continue
        out.append(BadFrame(event, data, mutation, verdict))
    return out


# ---- IPC messages -------------------------------------------------------------------------


class BadStr(bytes):
    """Bytes packed with a msgpack *str* header: invalid UTF-8 where text is expected."""


def pack(obj: Any) -> bytes:
    """A small msgpack writer that packs whatever it is given (msgspec refuses some)."""
    if obj is None:
        return b"\xc0"
    if obj is True or obj is False:
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        return _pack_int(obj)
    if isinstance(obj, float):
        return b"\xcb" + struct.pack(">d", obj)
    if isinstance(obj, (str, BadStr)):
        raw = bytes(obj) if isinstance(obj, BadStr) else obj.encode("utf-8", "surrogatepass")
        return b"\xdb" + len(raw).to_bytes(4, "big") + raw
    if isinstance(obj, bytes):
        return b"\xc6" + len(obj).to_bytes(4, "big") + obj
    if isinstance(obj, list):
        return b"\xdd" + len(obj).to_bytes(4, "big") + b"".join(pack(x) for x in obj)
    if isinstance(obj, dict):
        return b"\xdf" + len(obj).to_bytes(4, "big") + b"".join(
            pack(k) + pack(v) for k, v in obj.items())
    raise TypeError(type(obj).__name__)


def _pack_int(obj: int) -> bytes:
    """uint64 or int64; a value outside both wraps (so any int packs)."""
    if 0 <= obj < 2**64:
        return b"\xcf" + obj.to_bytes(8, "big")
    if -(2**63) <= obj < 0:
        return b"\xd3" + obj.to_bytes(8, "big", signed=True)
    return b"\xcf" + (obj % 2**64).to_bytes(8, "big")


_TURNS = [p.Turn("system", "s"), p.Turn("user", "alice: hi")]
SAMPLES: list[p.Message] = [
    p.Chat(channel="testchan", username="alice", text="hello", time=1),
    p.Pm(channel="testchan", username="alice", text="hello", time=1),
    p.UserJoined(channel="testchan", user=p.User(name="carol", rank=1)),
    p.UserLeft(channel="testchan", name="carol"),
    p.UserList(channel="testchan", users=[p.User(name="carol")]),
    p.RankChanged(channel="testchan", name="carol", rank=2),
    p.ConnState(channel="testchan", state="joined", bot_name="roseybot"),
    p.Delivered(channel="testchan", say_id="abc", ok=True, parts=1),
    p.Say(id="abc", channel="testchan", text="hi"),
    p.Ready(caller="caller-9", incarnation="x", slots=2),
    p.Heartbeat(caller="caller-9", incarnation="x", slots=2),
    p.Request(id="abc", deadline=1.0, provider="ollama", model="m", turns=_TURNS),
    p.Result(id="abc", caller="caller-9", ok=True, text="hi"),
    p.Partial(id="abc", caller="caller-9", seq=0, text="hi"),
    p.CtlRequest(command="status"),
    p.CtlReply(ok=True, text="ok"),
    p.MediaChanged(channel="testchan", title="t", id="i", type="yt"),
    p.UserMeta(channel="testchan", name="carol", afk=True),
    p.UserCount(channel="testchan", count=3),
]


@dataclass(frozen=True)
class BadIpc:
    socket: Literal["conn", "work", "control"]
    frames: list[bytes]
    mutation: str


def ipc_accepted(frames_: list[bytes], accept: tuple[type[p.Message], ...]) -> bool:
    """Would the router act on it (one frame, decodes, a kind its socket carries)?"""
    if len(frames_) != 1:
        return False
    try:
        return isinstance(p.decode(frames_[0]), accept)
    except p.DecodeError:
        return False


def _ipc_payload(rng: random.Random, mut: Mutator) -> tuple[str, list[bytes]]:
    sample = msgspec.to_builtins(rng.choice(SAMPLES))
    good = msgspec.msgpack.encode(sample)
    roll = rng.random()
    if roll < 0.26:
        return _framing_fault(rng, good, roll)
    if roll < 0.36:
        sample["v"] = rng.choice([0, 2, 99, -1, "1", None, 1.5, 2**40])
        return "wrong_version", [pack(sample)]
    if roll < 0.42:
        sample["k"] = rng.choice(["", "chatt", "CHAT", None, 7, mut.junk()])
        return "unknown_kind", [pack(sample)]
    if roll < 0.48:
        sample.pop("k")
        return "no_kind", [pack(sample)]
    if roll < 0.54:
        return "not_a_map", [pack(mut.garbage(rng.randint(0, 4)) if rng.random() < 0.5
                                  else rng.choice([[], 1, "chat", None, 1.5]))]
    if roll < 0.6:
        key = rng.choice([k for k in sample if k not in ("k", "v")] or ["k"])
        sample[key] = BadStr(b"\xff\xfe" + rng.randbytes(rng.randint(0, 6)))
        return "invalid_utf8", [pack(sample)]
    if roll < 0.7:
        return "wrong_socket", [good]
    mutation, mutated = mut.mutate(sample)
    return mutation, [pack(mutated)]


def _framing_fault(rng: random.Random, good: bytes, roll: float) -> tuple[str, list[bytes]]:
    """A good message broken as bytes or frames (``roll`` < 0.26 picks which)."""
    if roll < 0.06:
        return "raw_bytes", [rng.randbytes(rng.randint(0, 200))]
    if roll < 0.1:
        return "empty", [b""]
    if roll < 0.16:
        return "truncated", [good[: rng.randint(0, len(good) - 1)]]
    if roll < 0.2:
        return "trailing_bytes", [good + rng.randbytes(rng.randint(1, 8))]
    return "extra_frames", [good] + [rng.randbytes(4) for _ in range(rng.randint(1, 3))]


def bad_ipc(seed: int, count: int, accepts: dict[str, tuple[type[p.Message], ...]]) -> list[BadIpc]:
    """``count`` messages spread over the router's sockets, none of which it may act on."""
    rng = random.Random(seed)
    mut = Mutator(rng)
    sockets = sorted(accepts)
    out: list[BadIpc] = []
    while len(out) < count:
        socket = rng.choice(sockets)
        mutation, payload = _ipc_payload(rng, mut)
        if ipc_accepted(payload, accepts[socket]):
            continue
        out.append(BadIpc(socket, payload, mutation))  # type: ignore[arg-type]
    return out


def odd_ipc(seed: int, count: int) -> list[BadIpc]:
    """Valid messages with values no real peer sends (unknown ids and names, huge or junk
    text, odd numbers): the router acts on them, so they are not malformed, and must not
    crash it.  None changes what the bot does next (no ConnState, UserList or caller Ready,
    no control command that exists, no chat that mentions the bot)."""
    rng = random.Random(seed)
    mut = Mutator(rng)

    def text() -> str:
        raw = rng.choice([mut.junk(), mut.huge(), ""]).encode("utf-8", "replace").decode()
        return "" if "rosey" in raw.casefold() else raw

    def number() -> float:
        return rng.choice([-1.0, 0.0, 1e308, float("inf"), float("nan"), 2.0**62])

    makers: list[tuple[Literal["conn", "work", "control"], Any]] = [
        ("conn", lambda: p.Delivered(channel="testchan", say_id=text(), ok=rng.random() < 0.5,
                                     parts=rng.randint(-3, 2**31), reason=text())),
        ("conn", lambda: p.UserLeft(channel="testchan", name=text())),
        ("conn", lambda: p.RankChanged(channel="testchan", name=text(), rank=number())),
        ("conn", lambda: p.UserMeta(channel="testchan", name=text(), afk=True, muted=True)),
        ("conn", lambda: p.UserCount(channel="testchan", count=rng.randint(-(2**62), 2**62))),
        ("conn", lambda: p.MediaChanged(channel="testchan", title=text(), id=text(),
                                        type=text(), seconds=number())),
        ("conn", lambda: p.Chat(channel=text(), username="fuzz" + text()[:20], text=text(),
                                time=rng.randint(-(2**62), 2**62), received_at=number())),
        ("work", lambda: p.Result(id=text(), caller=text(), ok=rng.random() < 0.5,
                                  text=text(), latency=number(), cost_usd=number())),
        ("work", lambda: p.Partial(id=text(), caller=text(), seq=rng.randint(-5, 2**62),
                                   text=text())),
        ("control", lambda: p.CtlRequest(command="zz" + text()[:50], args=[text()])),
    ]
    out = []
    for _ in range(count):
        socket, make = rng.choice(makers)
        out.append(BadIpc(socket, [p.encode(make())], "valid_odd"))
    return out
