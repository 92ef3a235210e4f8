"""Pack a reply that arrives in pieces into chat messages.  Pure; no clock.

The non-streamed path splits a whole reply at once (``split.split_message``).  A streamed
reply arrives a sentence at a time and CyTube cannot edit a message, so each message must
be final when it is posted.  The rules:

* The first part goes as soon as it is worth a message: the longest run of complete
  sentences that fits one part and is at least ``min_first`` UTF-16 units long.  Or,
  before any sentence ends, as soon as a whole part's worth of text is waiting.
* Every later part is packed greedily: it goes once more text than a part holds is
  waiting (cut at the last word that fits), or at the end of the reply.  So after the
  first part the parts are exactly the greedy split of the rest, which never has more
  parts than the greedy split of the whole: a streamed reply has at most one part more
  than the same reply unstreamed.
* The cap: ``max_parts``, plus the one extra part an early first part costs (so a long
  answer loses no more text to the cap than it would unstreamed).  The part that reaches
  the cap while text is still coming ends with an ellipsis; the rest is dropped.
* A part never starts with ``/`` (``split.neutralise_command``).

``MIN_FIRST`` = 48 units: "alice: Sure!" or "alice: Good question!" (12-22 units) would
be a message saying nothing, whereas 48 units is roughly an addressed sentence of eight
words, e.g. "alice: It is a 1968 film by Stanley Kubrick." (44 + the full stop of a
longer one).  At 10-30 tokens/s (~4 characters a token) the wait for 48 units is at most
about a second after the first token, while a part that waits to be full (320 units)
costs 3-8 s.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from rosey.config_schema import MESSAGE_LENGTH_DEFAULT
from rosey.conn.split import (
    _CONTROL,
    _SPACES,
    ELLIPSIS,
    _fits,
    _truncate,
    _word_cut,
    neutralise_command,
    utf16_len,
)
from rosey.sentences import sentence_ends

MIN_FIRST = 48
KEEP = 256  # streamed replies remembered (in progress, or finished: re-offers are ignored)


def _flat(text: str) -> str:
    """Whitespace runs as one space, kept at the ends (they join this piece to the next)."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text))


class Packer:
    def __init__(self, limit: int = MESSAGE_LENGTH_DEFAULT, max_parts: int = 3,
                 min_first: int = MIN_FIRST):
        self.budget = limit - 1  # room for the leading space of a neutralised '/'
        self.max_parts = max_parts
        self.min_first = min(min_first, self.budget)
        self.pending = ""  # received, not yet in a part (normalised lazily)
        self.parts = 0  # parts produced so far
        self.cap = max_parts
        self.closed = False  # the cap was reached: later text is dropped
        self.dropped = False  # some text was dropped by the cap

    def feed(self, text: str) -> list[str]:
        """Take the next piece of the reply; returns the parts now ready to post."""
        if self.closed:
            self.dropped = self.dropped or bool(text.strip())
            return []
        self.pending += _flat(text)
        out: list[str] = []
        while not self.closed:
            part = self._next_part()
            if part is None:
                break
            out.append(part)
        return out

    def finish(self) -> list[str]:
        """The reply is complete: whatever is waiting goes out (greedily, under the cap)."""
        out: list[str] = []
        while not self.closed and self.pending.strip():
            out.append(self._next_part() or self._take(len(self.pending)))
        self.closed = True
        return [p for p in out if p]

    @property
    def waiting(self) -> str:
        return self.pending.strip()

    # ---- internals ------------------------------------------------------------------------

    def _next_part(self) -> str | None:
        text = self.pending = self.pending.lstrip()
        if not text:
            return None
        if utf16_len(text.rstrip()) > self.budget:
            if self.parts + 1 >= self.cap:  # the last part, with more text behind it
                return self._close(text)
            return self._take(_word_cut(text, self.budget))
        if self.parts == 0:
            end = self._first_sentences(text)
            if end:
                self.cap = self.max_parts + 1  # the early first part's extra message
                return self._take(end)
        return None

    def _first_sentences(self, text: str) -> int:
        """The end of the longest run of sentences that fits a part and is long enough."""
        best = 0
        # final: the text ends where a piece ended, and the caller cut its pieces at
        # sentence ends it had confirmed (or, in a long run with no end, at a word).
        for end in sentence_ends(text, final=True):
            units = utf16_len(text[:end])
            if units > self.budget:
                break
            if units >= self.min_first:
                best = end
        return best

    def _take(self, end: int) -> str:
        part = self.pending[:end].strip()
        self.pending = self.pending[end:]
        if not part:
            return ""
        self.parts += 1
        if self.parts >= self.cap:
            self.closed = True
            if self.pending.strip():
                self.dropped = True
        return neutralise_command(part)

    def _close(self, flat: str) -> str:
        room = self.budget - utf16_len(ELLIPSIS)
        part = _truncate(flat, room) if _fits(flat, room) < len(flat) else flat
        self.pending = ""
        self.parts += 1
        self.closed = True
        self.dropped = True
        return neutralise_command(part + ELLIPSIS)


@dataclass(slots=True)
class _Stream:
    packer: Packer
    next_seq: int
    first_seq: int  # the segments before it were posted by an earlier conn (its ledger)
    held: list[int] = field(default_factory=list)  # segments fed, not yet wholly in a part
    fed: str = ""  # the text fed so far (a restarted router re-offers what it had shown)
    done: bool = False


def _words(text: str) -> str:
    return " ".join(text.split())


class Streams:
    """conn's streamed replies by id: each segment fed once, in order, to its reply's packer.

    A segment whose text the packer holds (a first sentence under ``MIN_FIRST``, a part
    not yet full) is not finished: it *rides* on the segment whose parts carry its text,
    and is acknowledged with it.  A re-offer of a segment already fed is ignored, as is one
    after a gap (the router offers in order and re-offers until acknowledged).  A conn that
    restarts starts a new packer after the last segment its post ledger knows of (``skip``,
    and ``may_start``: a segment after one the ledger does not know waits for that one);
    the text an old packer held is lost with it, never posted twice.
    """

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, _Stream] = OrderedDict()

    def _open(self, say_id: str, seq: int, limit: int, max_parts: int) -> _Stream:
        stream = self._by_id[say_id] = _Stream(Packer(limit, max_parts), seq, seq)
        while len(self._by_id) > KEEP:
            self._by_id.popitem(last=False)
        return stream

    def known(self, say_id: str) -> bool:
        return say_id in self._by_id

    def fed(self, say_id: str, seq: int) -> bool:
        """Segment ``seq`` went into this conn's packer (it is finished with its carrier)."""
        stream = self._by_id.get(say_id)
        return stream is not None and stream.first_seq <= seq < stream.next_seq

    def skip(self, say_id: str, seq: int, limit: int, max_parts: int) -> None:
        """Segments up to ``seq`` are resumed from the post ledger (their parts, as an
        earlier conn split them): the packer takes the segments after it."""
        stream = self._by_id.get(say_id) or self._open(say_id, seq + 1, limit, max_parts)
        if not stream.done and stream.next_seq <= seq:
            stream.next_seq = seq + 1

    def take(self, say_id: str, seq: int, text: str, final: bool, limit: int,
             max_parts: int, may_start: bool = True) -> tuple[list[str], list[int], bool] | None:
        """Feed one segment.  None: ignore it.  Else ``(parts, riders, held)``: the parts
        to post for this segment, and the earlier segments finished when they are; with
        no parts, ``riders`` are the segments finished now (at the end of the reply).
        ``held``: part of this segment's text is still waiting, so its own parts being
        confirmed does not finish it (it rides on a later segment).  ``may_start``: a new
        packer may begin at this segment (it is the first, or the ledger knows the one
        before it); else an unknown reply's segment is ignored until the gap is filled."""
        stream = self._by_id.get(say_id)
        if stream is None:
            if not may_start:
                return None
            stream = self._open(say_id, seq, limit, max_parts)
        if stream.done or seq != stream.next_seq:
            return None
        stream.next_seq += 1
        stream.fed += text
        parts = stream.packer.feed(text)
        if final:
            parts += stream.packer.finish()
            stream.done = True
        return self._hand_out(stream, seq, parts, final)

    def end(self, say_id: str, whole: str) -> tuple[int, list[str], list[int]] | None:
        """A restarted router re-offers a reply it was streaming as one whole Say (the text
        it had shown): no segment follows, so the reply ends here.  Returns ``(seq, parts,
        riders)`` for a last segment ``seq`` of its own: the held text, plus any shown text
        this conn was never offered.  None when the reply is not one in progress here."""
        stream = self._by_id.get(say_id)
        if stream is None or stream.done:
            return None
        seq = stream.next_seq
        stream.next_seq += 1
        fed, shown = _words(stream.fed), _words(whole)
        # Only a packer that saw the reply from its start knows which of it was shown.
        tail = shown[len(fed):] if stream.first_seq == 0 and shown.startswith(fed) else ""
        parts = stream.packer.feed(tail) + stream.packer.finish()
        stream.done = True
        riders, stream.held = stream.held, []
        return seq, parts, riders

    @staticmethod
    def _hand_out(stream: _Stream, seq: int, parts: list[str],
                  final: bool) -> tuple[list[str], list[int], bool]:
        riders, stream.held = stream.held, []
        if parts:
            held = bool(stream.packer.waiting) and not final
            if held:
                stream.held.append(seq)
            return parts, riders, held
        if final:
            return [], [*riders, seq], False
        stream.held = [*riders, seq]
        return [], [], True
