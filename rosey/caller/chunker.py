"""Cut a streamed answer into the pieces a caller sends as ``Partial``.  Pure.

A piece ends at a confirmed sentence end (``rosey.sentences``), so conn can post the first
sentence the moment its piece arrives; a run of ``max_piece`` characters with no end is
cut at its last space instead, so a model that never ends a sentence still fills parts.
The whitespace after a cut stays at the front of the next piece: the pieces joined are
exactly the text the model sent (the final ``Result.text``), so the router can post what
the pieces did not cover as ``Result.text[len(covered):]``.
"""

from __future__ import annotations

from rosey.sentences import last_end

# Well over one sentence, under one chat message (320): a long run still reaches conn in
# time to fill the next part.
MAX_PIECE = 200


class Chunker:
    def __init__(self, max_piece: int = MAX_PIECE) -> None:
        self.max_piece = max_piece
        self.pending = ""
        self.sent = 0  # characters handed out as pieces

    def feed(self, delta: str) -> list[str]:
        """The next text from the model; returns the pieces now complete (maybe none)."""
        self.pending += delta
        pieces: list[str] = []
        end = last_end(self.pending)
        if end:
            pieces.append(self._cut(end))
        while len(self.pending) > self.max_piece:
            space = self.pending.rfind(" ", 1, self.max_piece)
            pieces.append(self._cut(space if space > 0 else self.max_piece))
        return [p for p in pieces if p.strip()]

    def _cut(self, end: int) -> str:
        piece, self.pending = self.pending[:end], self.pending[end:]
        self.sent += len(piece)
        return piece
