"""A streamed answer on its way to the channel: ``Partial`` pieces in, reply segments out.

The caller sends an answer a sentence at a time (``Partial``); each piece becomes the next
segment of the reply (``Say{seq, final=False, stream=True}``) as soon as it is cleaned the
way a whole answer is (``replies.finish``): the bot's own "Rosey:" dropped from the first,
markdown stripped per piece, the total bounded by ``router.max_reply_chars``, the
blocklist applied.  conn packs the segments into chat messages (``cytube/packer.py``).
The final ``Result`` carries the whole text: what the pieces did not cover is the final
segment.

Failure after something was shown (the provider dies, the deadline fires, the caller is
killed): the reply ends with what was shown, and no fallback line.  A channel that has
read two sentences of an answer and then sees "Sorry, I'm having trouble thinking right
now." reads it as the bot contradicting itself; the sentences it has are a complete,
shorter answer (pieces end at sentence ends).  Only when the shown text stops mid-sentence
(a piece cut in a long run with no full stop) does an ellipsis mark the cut.  A blocklist
hit after the first segment ends the reply there, likewise.  History keeps exactly the
text that was sent.  Pure: no clock, no sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rosey.router.prompts import postprocess, strip_markdown
from rosey.router.replies import ReplyPolicy, _drop_self_prefix
from rosey.sentences import ends_sentence

CUT = "…"


@dataclass(slots=True)
class Stream:
    next_partial: int = 0  # the Partial seq expected next (repeats are ignored)
    covered: int = 0  # characters of the model's text the pieces covered
    segments: int = 0  # segments sent to conn
    shown: list[str] = field(default_factory=list)  # segment texts, unaddressed
    stopped: bool = False  # max_reply_chars or the blocklist ended it: nothing more goes
    blocked: bool = False
    closed: bool = False  # the reply was closed (conn gave up, expired): no segment goes

    @property
    def text(self) -> str:
        return "".join(self.shown).strip()


def accept(stream: Stream, seq: int, raw: str) -> bool:
    """Take Partial ``seq``; False for a repeat or one after a gap (ignored)."""
    if seq != stream.next_partial:
        return False
    stream.next_partial += 1
    stream.covered += len(raw)
    return True


def piece(policy: ReplyPolicy, stream: Stream, raw: str) -> str:
    """The next segment's text for ``raw`` model text ("" when nothing is to be sent)."""
    if stream.stopped:
        return ""
    first = not stream.shown
    text = _drop_self_prefix(policy.bot_name, raw.strip()) if first else raw
    clean = " ".join(strip_markdown(text).split())
    if not clean:
        return ""
    if any(pattern.search(clean) for pattern in policy.blocklist):
        stream.stopped = stream.blocked = True
        return ""
    lead = "" if first or not raw[:1].isspace() else " "
    room = policy.max_chars - len(stream.text) - len(lead)
    if len(clean) > room:
        stream.stopped = True
        if room < 2:
            return ""
        clean = postprocess(clean, room)
    stream.shown.append(lead + clean)
    return lead + clean


def ending(stream: Stream, ok: bool) -> str:
    """Text to add to a failed stream's final segment: an ellipsis if it stopped
    mid-sentence, else nothing (see the module docstring)."""
    shown = stream.text
    if ok or not shown or ends_sentence(shown) or shown.endswith(CUT):
        return ""
    stream.shown.append(" " + CUT)
    return " " + CUT
