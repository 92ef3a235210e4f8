"""One channel's core: a mention read top to bottom, and the channel's events.

``on_chat`` is the path of one line: ignore → log → ``Judge.hears`` (trigger, switches,
opt-outs) → coalesce with an open request (``Flow.open_for``) → ``Judge.admit`` (limits,
queue, budget) → ``Judge.prompt`` over ``Conversation.history_of`` → ``Flow.accept``
(journal, dispatch).  Each step returns; none calls back.  It returns the ``Decision`` (the
replay tool prints them).  The answer comes back through ``answered`` (an ``Answered``
outcome the router takes from the flow).  Built by ``router/build.py`` only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from rosey import metrics
from rosey import protocol as wire
from rosey.config import Config
from rosey.protocol import PRIORITY_OTHER, Message, Turn
from rosey.protocol_moderation import ActionResult
from rosey.router.actions import ActionDesk
from rosey.router.channel import ChannelState
from rosey.router.conversation import Conversation
from rosey.router.core_commands import CommandsMixin
from rosey.router.flow import Flow
from rosey.router.judge import ACCEPTED, Judge
from rosey.router.lane import Answered, Lane
from rosey.router.modwiring import mod_context
from rosey.router.prompts import address
from rosey.router.records import Records
from rosey.router.replies import ReplyPolicy
from rosey.router.statskeeper import StatsKeeper
from rosey.store import Store

log = logging.getLogger("rosey.router")
REFUSED_NOTICES_MAX = 5000


@dataclass(frozen=True, slots=True)
class Decision:
    """What became of one line addressed to the bot (``rosey replay`` prints these)."""

    user: str
    text: str
    decision: str  # accepted, coalesced, history, refused, off, ignored
    detail: str


def lane_of(cfg: Config, records: Records) -> Lane:
    return Lane(cfg.channel, records,
                ReplyPolicy.build(cfg.bot_name, cfg.router.max_reply_chars,
                                  cfg.router.blocklist, cfg.router.blocklist_reply),
                cfg.llm.fallback_response, cfg.conn.post_ttl)


class ChannelCore(CommandsMixin):
    def __init__(self, cfg: Config, *, records: Records, flow: Flow, desk: ActionDesk,
                 channel: ChannelState, conversation: Conversation, judge: Judge,
                 store: Store | None, reload: Callable[[], str],
                 clock: Callable[[], float]) -> None:
        self.cfg = cfg
        self.name = cfg.channel
        self.records = records
        self.flow = flow
        self.desk = desk
        self.channel = channel
        self.conversation = conversation
        self.judge = judge
        # The moderator commands need the live channel and the database.
        self.mod = None if store is None else mod_context(cfg, channel, store, desk, self.say,
                                                         clock)
        self.reload_config = reload
        self.clock = clock
        self.lane = lane_of(cfg, records)
        self.statskeeper = StatsKeeper(records, judge.limiter.day, cfg.channel)
        self._refused_notice: dict[str, float] = {}
        self._commands: set[asyncio.Task[None]] = set()  # PM commands waiting for the server

    def reload(self, cfg: Config) -> None:
        """A changed config for this channel: prompt, personas, triggers, limits, blocklist
        apply to the next mention; history, toggles, stats and limiter state stay (but a
        changed ``llm.enabled`` / ``llm.llm_cooldown`` beats the runtime toggle)."""
        self.cfg = cfg
        self.conversation.adopt(cfg)  # before the judge takes the toggles' cooldown
        self.judge = Judge.build(cfg, self.judge)
        self.lane = lane_of(cfg, self.records)

    def restore(self) -> None:
        """Toggles, limits, statistics and spend from the database (before the first event)."""
        now = self.clock()
        day = self.judge.limiter.day(now)
        self.conversation.restore(day, self.judge.personas)
        self.judge.limiter.config.user_cooldown = self.conversation.toggles.cooldown
        for key, state in self.records.load_rate_limits().items():
            self.judge.limiter.restore(key, state)
        self.statskeeper.restore(now)

    async def say(self, text: str, pm_to: str = "", priority: int = PRIORITY_OTHER) -> None:
        await self.flow.say(self.lane, text, pm_to=pm_to, priority=priority)

    # ---- one line ----------------------------------------------------------------

    async def on_chat(self, user: str, text: str, private: bool,
                      received_at: float) -> Decision | None:
        now = self.clock()
        if self.judge.ignores(user):
            return None
        opted_out = self.conversation.opted_out(user)
        if not opted_out:  # !optout: keep nothing of theirs
            self.records.chat(user, "pm" if private else "chat", text, now)
            self.records.user_seen(user, self.channel.rank_of(user), now, True)
            if not private:
                self.channel.heard(user, text)
        heard = self.judge.hears(text, private, opted_out, now)
        if heard is None:
            return None
        if heard.decision != ACCEPTED:
            return Decision(user, text, heard.decision, heard.detail)
        metrics.TRIGGERS.labels(self.name, heard.kind).inc()
        return await self.answer(self.channel.exact_name(user), text, private,
                                 received_at or now)

    async def answer(self, user: str, text: str, private: bool, received_at: float) -> Decision:
        """Everything after the trigger: coalescing, limits, budget, prompt, accept."""
        line = f"{user}: {text}"
        guest = self.channel.is_guest(user)
        open_request = self.flow.open_for(self.name, user, private)
        if open_request is not None:
            where, job = open_request
            self.conversation.remember(user, "user", line, guest)
            if where == "queued":  # not yet dispatched: one answer for both
                job.request.turns.append(Turn("user", line))
                self.flow.rejournal(job)
                metrics.REQUESTS.labels(self.name, "coalesced").inc()
                return Decision(user, text, "coalesced", job.request.id[:8])
            # The model is already on it: the line only joins history.
            metrics.REQUESTS.labels(self.name, "joined_history").inc()
            return Decision(user, text, "history", f"{job.request.id[:8]} in flight")
        now = self.clock()
        verdict = self.judge.admit(self.channel.limit_key(user), self.channel.rank_of(user),
                                   now, self.flow.full(self.name))
        if verdict.decision != ACCEPTED:
            metrics.RATE_LIMITED.labels(self.name, verdict.scope).inc()
            await self._refused(user, private, verdict.scope, verdict.retry_in, now)
            return Decision(user, text, "refused", verdict.detail)
        for key, state in verdict.charged:
            self.records.rate_limit(key, state)
        history = await self.conversation.history_of(user)
        turns = self.judge.prompt(user, text, private, history, self.channel.now_playing,
                                  self.channel.context(), now)
        self.conversation.remember(user, "user", line, guest)
        request_id = await self.flow.accept(self.lane, user, private, received_at,
                                            received_at + self.cfg.llm.response_timeout,
                                            verdict.provider, verdict.model, turns)
        return Decision(user, text, "accepted", request_id[:8])

    async def _refused(self, user: str, private: bool, scope: str, retry_in: float,
                       now: float) -> None:
        """Tell the user, when the config says so: the budget's fallback line, or (once
        per window) the seconds left of a limit."""
        if scope == "budget":
            log.warning("%s: budget exhausted: %s for %s", self.name, self.cfg.budget.action, user)
            if self.cfg.budget.action != "silent":
                fallback = self.cfg.llm.fallback_response
                await self.flow.say(self.lane, fallback if private else address(user, fallback),
                                    pm_to=user if private else "")
            return
        if scope == "queue":
            return
        log.info("%s: refused %s: %s limit, %.0f s left", self.name, user, scope, retry_in)
        if not self.cfg.router.limits.notify_refused:
            return
        if self._refused_notice.get(user.lower(), 0) > now:
            return  # once per window
        self._refused_notice[user.lower()] = now + retry_in
        if len(self._refused_notice) > REFUSED_NOTICES_MAX:
            self._refused_notice.clear()
        await self.say(f"Please wait {retry_in:.0f} s before asking me again.", pm_to=user)

    def answered(self, outcome: Answered) -> None:
        """A concluded request of this channel: history, statistics, spend."""
        self.conversation.answered(outcome.user, outcome.text, outcome.result,
                                   self.channel.is_guest(outcome.user),
                                   self.judge.limiter.day(self.clock()))

    async def on_pm(self, user: str, text: str, received_at: float) -> Decision | None:
        prefix = self.cfg.router.command_prefix
        if user.lower() == self.cfg.bot_name.lower():
            return None
        if text.startswith(prefix):
            await self.pm_command(self.actor(user), text[len(prefix):])
            return None
        return await self.on_chat(user, text, True, received_at)

    # ---- the channel's other events ------------------------------------------------

    def on_event(self, msg: Message) -> None:
        """Everything conn reports that only updates what the router knows."""
        now = self.clock()
        if isinstance(msg, ActionResult):
            self.desk.on_result(msg)
        elif isinstance(msg, wire.ConnState):
            self.channel.conn_rank = msg.bot_rank
        elif isinstance(msg, wire.UserList):
            self.channel.set_users(msg.users)
            for user in msg.users:
                self.records.user_seen(user.name, user.rank, now, False)
            self.statskeeper.users_changed(self.channel, now)
        elif isinstance(msg, wire.UserJoined):
            self.channel.joined(msg.user)
            self.records.user_seen(msg.user.name, msg.user.rank, now, False)
            self.statskeeper.users_changed(self.channel, now)
        elif isinstance(msg, wire.UserLeft):
            self.channel.left(msg.name)
            if self.cfg.router.reset_on_leave:
                self.conversation.history.forget(msg.name)
            self.statskeeper.users_changed(self.channel, now)
        elif isinstance(msg, wire.RankChanged):
            self.channel.rank_changed(msg.name, msg.rank)
        else:
            self.on_other(msg)

    def on_other(self, msg: Message) -> None:
        if self.channel.apply(msg):  # playlist and permissions
            metrics.CHANNEL_PLAYLIST_ITEMS.set(len(self.channel.playlist.items))
        elif isinstance(msg, wire.MediaChanged):
            self.channel.now_playing = msg.title
            self.statskeeper.media(self.channel, msg, self.clock())
        elif isinstance(msg, wire.UserMeta):
            self.channel.meta(msg.name, afk=msg.afk, muted=msg.muted)
        elif isinstance(msg, wire.UserCount):
            self.channel.user_count = msg.count
            metrics.CHANNEL_CONNECTIONS.labels(self.name).set(msg.count)

    def idle(self) -> bool:
        """Nothing of this channel left to deliver (a removed channel is dropped then)."""
        return not any(p.lane.channel == self.name for p in self.flow.pending.values()) and \
            not any(o.say.channel == self.name for o in self.flow.outbox.values())
