"""conn's metrics for one channel: what the pure parts noted, counted on the process registry.

``session.py`` and ``backoff.py`` touch no metric: the session notes what happened
(``Session.notes``) and the client hands the notes here, with its lifecycle news. The
children of labelled metrics are made once (``labels()`` costs a lock and a dict walk per
call, and a frame counter runs on every frame).
"""

from __future__ import annotations

from typing import Any

from rosey import metrics
from rosey.conn import events as ev
from rosey.conn import refusals
from rosey.conn.session import Note


class ChannelMetrics:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        metrics.add_channel("conn", channel)  # its known series at 0 (also when it joins late)
        for reason in refusals.FATAL_REASONS:  # conn knows its reasons; the catalog does not
            metrics.FATAL.labels(channel, reason).set(0)
        self._frames: dict[str, Any] = {}
        self.connected = metrics.CONNECTED.labels(channel=channel)
        self.muted = metrics.MUTED.labels(channel=channel)
        self.last_event = metrics.LAST_EVENT.labels(channel=channel)

    def frame(self, event: str, now: float) -> None:
        counter = self._frames.get(event)
        if counter is None:
            label = event if event in ev.KNOWN_EVENTS else "other"
            counter = self._frames[event] = metrics.FRAMES_IN.labels(label)
        counter.inc()
        self.last_event.set(now)

    def notes(self, notes: list[Note]) -> None:
        for kind, label, amount in notes:
            if kind == "frame_error":
                metrics.FRAME_ERRORS.labels(label).inc()
            elif kind == "unknown_event":
                metrics.UNKNOWN_EVENTS.inc()
            elif kind == "replay_dropped":
                metrics.REPLAYS_DROPPED.inc()
            elif kind == "keepalive":
                metrics.KEEPALIVES.inc()
            elif kind == "kick":
                metrics.KICKS.labels(channel=self.channel, kind=label).inc()
            elif kind == "server_dropped":
                metrics.SERVER_DROPPED.labels(label).inc()
            elif kind == "resent":
                metrics.RESENT.inc()
            elif kind == "spam_filtered":
                metrics.SPAM_FILTERED.labels(label).inc()
            elif kind == "say":
                metrics.SAY_OUTCOMES.labels(label).inc()
            elif kind == "expired_parts":
                metrics.EXPIRED_PARTS.inc(amount)
            elif kind == "governor_wait":
                metrics.GOVERNOR_WAIT.observe(amount)

    def fatal(self, reason: refusals.FatalReason | None) -> None:
        """Which reason (if any) this channel stopped retrying for: one series at 1."""
        for each in refusals.FATAL_REASONS:
            metrics.FATAL.labels(channel=self.channel, reason=each).set(1 if each == reason
                                                                        else 0)
        if reason is not None:
            self.connected.set(0)




def forget(channel: str) -> None:
    """The channel left the config: its series go (a stale 0 would keep an alert firing)."""
    metrics.remove_channel(channel)
