"""The join replay (PROTOCOL §3.2, docs/DECISIONS.md): CyTube re-sends the last 15 chat lines on
every join with their old ``time``; the bot must never answer them."""

from __future__ import annotations

__all__ = ["JoinReplayFilter"]


class JoinReplayFilter:
    """Recognises the chat-buffer replay that CyTube sends on every join.

    Rule (docs/DECISIONS.md): ignore ``chatMsg`` between the ``joinChannel`` emit and the first
    ``userlist``, and any ``chatMsg`` whose ``time`` is <= the newest replayed ``time``.
    Only server times are compared, never the local clock.
    """

    __slots__ = ("_newest", "_suppressing")

    def __init__(self) -> None:
        self._suppressing = False
        self._newest: int | None = None

    @property
    def suppressing(self) -> bool:
        return self._suppressing

    @property
    def newest_replayed(self) -> int | None:
        return self._newest

    def on_join_sent(self) -> None:
        """Call right before every ``joinChannel`` emit (first join and each rejoin)."""
        self._suppressing = True

    def on_userlist(self) -> None:
        """Call on every ``userlist``; the first one after a join ends the burst."""
        self._suppressing = False

    def is_replay(self, time_ms: int) -> bool:
        """True for a replayed (or older) message; records replayed times while suppressing."""
        if self._suppressing:
            if self._newest is None or time_ms > self._newest:
                self._newest = time_ms
            return True
        return self._newest is not None and time_ms <= self._newest
