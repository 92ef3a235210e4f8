"""The fuzzed frames through conn's pure session: one count per bad frame, and whatever a
frame that parses becomes can be sent to the router (an unencodable message once broke
conn's flush, dropping the other messages of that frame uncounted)."""

from __future__ import annotations

import collections

from rosey.conn import events as ev
from rosey.protocol import Chat, encode
from tests.fuzzing import bad_frames
from tests.unit.test_conn_session import joined_session, noted

SEED = 11


def test_fuzzed_frames_count_once_and_what_parses_encodes() -> None:
    bad = bad_frames(SEED, 1500, "roseybot")
    s = joined_session()
    labels = {f.label for f in bad}
    forwarded = 0
    for frame in bad:
        s.on_frame(frame.event, frame.data)
        out, _, _ = s.take()
        forwarded += len(out)
        for msg in out:
            encode(msg)  # raises on a lone surrogate or an integer msgpack cannot hold
    want = collections.Counter(f.label for f in bad if f.verdict == "malformed")
    assert {label: noted(s, "frame_error", label) for label in labels} == {
        label: float(want[label]) for label in labels}
    assert noted(s, "unknown_event") == sum(
        f.verdict == "unknown" for f in bad)
    assert forwarded > 0 and s.joined  # valid ones went through; the session is intact


def test_half_an_emoji_is_replaced_and_a_huge_number_is_malformed() -> None:
    # The server cuts chat at 320 UTF-16 units: a message can end in half a surrogate pair.
    s = joined_session()
    s.on_frame("chatMsg", {"username": "alice", "msg": "x" * 319 + "\ud83c", "time": 10**13})
    (chat,) = s.take()[0]
    assert isinstance(chat, Chat) and chat.text == "x" * 319 + "\ufffd"
    assert encode(chat)
    s.on_frame("chatMsg", {"username": "alice", "msg": "hi", "time": 10**30})
    assert s.take()[0] == []
    assert noted(s, "frame_error", "chatMsg") == 1
    assert ev.parse_frame("usercount", 2**53 - 1) == ev.UsercountFrame(2**53 - 1)
