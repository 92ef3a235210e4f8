"""Channel statistics as they happen: user counts, daily peaks, media with who queued it.

The router calls it on every userlist change, sample tick and media change; it keeps the
Prometheus series current and writes the facts through ``Records`` (off the loop). The
reading side is :mod:`rosey.store.chanstats`.
"""

from __future__ import annotations

from collections.abc import Callable

from rosey import metrics
from rosey.protocol import MediaChanged
from rosey.router.channel import ChannelState
from rosey.router.records import Records


class StatsKeeper:
    def __init__(self, records: Records, day_of: Callable[[float], str],
                 channel: str = "") -> None:
        self.channel = channel  # the metrics' label
        self.records = records
        self.day_of = day_of
        self.day = ""
        self.peak = 0
        self.peak_at = 0.0

    def restore(self, now: float) -> None:
        """Today's peak so far (a restarted router must not lower it)."""
        self.day = self.day_of(now)
        self.peak, self.peak_at = self.records.load_peak(self.day)
        metrics.CHANNEL_PEAK.labels(self.channel).set(self.peak)

    def users_changed(self, channel: ChannelState, now: float) -> None:
        users = len(channel.users)
        metrics.CHANNEL_USERS.labels(self.channel).set(users)
        day = self.day_of(now)
        if day != self.day:
            self.day, self.peak = day, 0
        if users > self.peak:
            self.peak, self.peak_at = users, now
            metrics.CHANNEL_PEAK.labels(self.channel).set(users)
            self.records.peak(day, users, now)

    def sample(self, channel: ChannelState, now: float) -> None:
        self.users_changed(channel, now)  # also rolls the peak over at midnight
        self.records.user_count(now, len(channel.users), channel.user_count)

    def media(self, channel: ChannelState, msg: MediaChanged, now: float) -> None:
        metrics.CHANNEL_MEDIA_CHANGES.inc()
        metrics.CHANNEL_MEDIA_STARTED.set(now)
        metrics.CHANNEL_PLAYLIST_ITEMS.set(len(channel.playlist.items))
        playing = channel.playlist.now_playing()
        by = playing.queueby if playing is not None and playing.id == msg.id else ""
        self.records.media(msg.title, msg.id, msg.type, msg.seconds, now, by)
