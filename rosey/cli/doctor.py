"""``rosey doctor``: pre-flight checks of a deployment, each a ✔/✘ line with the fix.

CyTube: socketconfig reachable, the channel's message length, socket.io connect +
``joinChannel`` + ``login`` (then it leaves), the bot's rank and what it implies — through
conn's own code (``site``, ``transport``, ``Session``), so doctor and conn cannot disagree.
LLM: for ``llm.provider``/``llm.model`` and each ``providers.fallbacks`` entry, host
reachable, key valid and model present (``Backend.check``), then a one-token completion
with its latency.  Nothing is written; the only side effects are one connection (it
counts against CyTube's per-IP connect bucket) and, for a guest, one guest login (one
per IP per 60 s).  If the bot is already in the channel, the login is not repeated:
that would kick it ("Duplicate login").
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rosey.config import Config, channel_configs
from rosey.conn import ranks, refusals, site, transport
from rosey.conn.backoff import ReconnectPolicy
from rosey.conn.governor import Governor
from rosey.conn.session import Emit, Session
from rosey.protocol import Turn

SOCKET_WAIT = 10.0  # python-socketio's connect wait_timeout (its default of 1 s is too short)


@dataclass(frozen=True)
class Check:
    ok: bool
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" — fix: {self.fix}" if self.fix and not self.ok else ""
        return f"{'✔' if self.ok else '✘'} {self.name}: {self.detail}{fix}"


Report = Callable[[Check], None]


def run_doctor(cfg: Config, out: Callable[[str], None] = print) -> int:
    """Run every check, printing each line as it is known; 0 if all passed, else 1."""
    results: list[Check] = []

    def report(check: Check) -> None:
        results.append(check)
        out(check.line())

    asyncio.run(doctor(cfg, report))
    return 0 if results and all(c.ok for c in results) else 1


async def doctor(cfg: Config, report: Report) -> None:
    channels = channel_configs(cfg)
    # Each channel is one more connect from this IP: paced like conn paces its reconnects
    # (CyTube's per-IP bucket, PROTOCOL §2), so the sixth channel is not refused.
    bucket = ReconnectPolicy()
    for each in channels:
        await asyncio.sleep(bucket.bucket_wait(bucket.clock()))
        bucket.record_attempt()
        await check_cytube(each, report if len(channels) == 1 else _prefixed(each, report))
    await check_llm(cfg, report)


def _prefixed(cfg: Config, report: Report) -> Report:
    """With several channels, each CyTube line names its channel ("anime: login")."""
    return lambda check: report(dataclasses.replace(check, name=f"{cfg.channel}: {check.name}"))


# ---- CyTube ----------------------------------------------------------------------------


async def check_cytube(cfg: Config, report: Report) -> None:
    """conn's own dialogue (``site.lookup``, ``transport.Socket``, ``Session``) with one
    difference: the login waits for the userlist, so that a running bot is not kicked."""
    try:
        where = await site.lookup(cfg.domain, cfg.channel, cfg.conn.connect_timeout,
                                  read_page=not cfg.conn.message_length)
    except site.SiteError as exc:
        report(Check(False, "socketconfig", exc.detail, _site_fix(exc.kind, cfg)))
        return
    report(Check(True, "socketconfig", f"{where.socketconfig} → socket server {where.server}"))
    report(_message_length(where, cfg))
    dialogue = _Dialogue(cfg)
    try:
        await dialogue.socket.connect(where.server, SOCKET_WAIT)
    except transport.Refused as exc:
        report(Check(False, "connect", f"{where.server}: {exc.text}",
                     refusals.fix(exc.reason, _names(cfg))))
        return
    try:
        await _join_and_login(cfg, dialogue, report)
    finally:
        await dialogue.socket.close()


def _site_fix(kind: site.Failure, cfg: Config) -> str:
    if kind == "no_channel":
        return refusals.fix("no_channel", _names(cfg))
    if kind == "http":
        return "check `domain`; the site may be down or behind a login wall"
    if kind == "no_servers":
        return "the site is misconfigured; ask its admin"
    return (f"check `domain` ({cfg.domain}): the CyTube site's URL, e.g. https://cytu.be, "
            "reachable from this machine (DNS, firewall, proxy)")


def _message_length(where: site.Site, cfg: Config) -> Check:
    name = "message length"
    if cfg.conn.message_length:
        return Check(True, name, f"{cfg.conn.message_length} (conn.message_length); replies "
                     "are split to it")
    limit = site.message_limit(where.maxlength)
    if limit == where.maxlength:
        return Check(True, name, f"{limit} characters (the channel page's chat maxlength); "
                     "replies are split to it")
    return Check(True, name, f"not shown on {where.page}; {limit} (CyTube's default) will be "
                 "used — set conn.message_length if the server differs")


class _Dialogue:
    """conn's ``Session`` over one socket: every frame goes through it, its emits go out."""

    def __init__(self, cfg: Config) -> None:
        self.session = Session(channel=cfg.channel, name=cfg.bot_name, password=cfg.password,
                               channel_password=cfg.conn.channel_password,
                               governor=Governor(), clock=time.time)
        self.frames: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.socket = transport.Socket(self._on_frame)
        self.antiflood: bool | None = None  # None until channelOpts says

    async def _on_frame(self, event: str, data: Any = None) -> None:
        await self.frames.put((event, data))

    async def send(self, emit: Emit) -> None:
        await self.socket.emit(emit.event, emit.data)

    async def until(self, done: Callable[[str, Any], bool], timeout: float) -> bool:
        """Feed frames to the session until ``done(event, data)``; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                event, data = await asyncio.wait_for(self.frames.get(), left)
            except TimeoutError:
                return False
            self.session.on_frame(event, data)
            if event == "channelOpts":
                self.antiflood = self.session.antiflood
            for emit in self.session.take()[1]:
                if emit.delay == 0:  # a delayed retry (guest login rule): doctor reports it
                    await self.send(emit)
            if done(event, data):
                return True
        return False


# How long after the login doctor listens for a ban's kick before calling the login good.
BAN_SETTLE = 1.0


async def _join_and_login(cfg: Config, d: _Dialogue, report: Report) -> None:
    s, name, wait = d.session, cfg.bot_name, SOCKET_WAIT
    await d.send(s.join())
    joined = await d.until(lambda _e, _d: bool(s.userlist_seen or s.fatal or s.kick_verdict),
                           wait)
    if not joined or s.kick_verdict or s.fatal:
        if s.fatal_reason == "channel_password":
            report(Check(False, "join", f"{cfg.channel} asks for a password ({s.fatal})",
                         refusals.fix("channel_password", _names(cfg))))
            return
        why = s.kick_reason or "no answer"
        fix = refusals.fix(s.fatal_reason, _names(cfg)) if s.fatal_reason else \
            "check `channel`; the server kicked or ignored the join"
        report(Check(False, "join", f"joinChannel {cfg.channel}: {why}", fix))
        return
    if (me := s.roster.get(name.lower())) is not None:
        report(Check(True, "login", f"{me.name} is already in {cfg.channel} (the running "
                     "bot?); not logging in again, that would kick it"))
        report(rank_check(me.rank, d.antiflood, s.antiflood_params[:2], name))
        return
    await d.send(s.login())
    await d.until(lambda _e, _d: bool(s.logged_in or s.fatal or s.login_error
                                      or s.kick_verdict), wait)
    if s.kick_verdict:  # a channel ban by name: kicked once logged in
        fix = refusals.fix(s.fatal_reason, _names(cfg)) if s.fatal_reason else \
            "see the kick reason"
        report(Check(False, "login", f"{name} was kicked: {s.kick_reason}", fix))
        return
    if s.login_error:
        report(Check(False, "login", f"{name}: {s.login_error}",
                     refusals.fix(refusals.login_reason(s.login_error), _names(cfg))))
        return
    if not s.logged_in:
        report(Check(False, "login", f"no login answer within {wait:g}s",
                     "run doctor again; if it persists the server is overloaded"))
        return

    def my_rank(event: str, data: Any) -> bool:  # the channel rank follows the login
        return event == "setUserRank" and isinstance(data, dict) and \
            str(data.get("name", "")).lower() == name.lower()

    await d.until(lambda e, data: my_rank(e, data) or bool(s.kick_verdict), 2.0)
    # A channel ban by name is a kick that follows the login (seen on a real 3.86 server
    # after the rank): a short settle, or a banned bot would pass this check.
    await d.until(lambda _e, _d: bool(s.kick_verdict), BAN_SETTLE)
    if s.kick_verdict:
        fix = refusals.fix(s.fatal_reason, _names(cfg)) if s.fatal_reason else \
            "see the kick reason"
        report(Check(False, "login", f"{name} was kicked after logging in: {s.kick_reason}",
                     fix))
        return
    kind = "guest" if s.guest else "registered account"
    report(Check(True, "login", f"joined {cfg.channel} as {name} ({kind}), then left"))
    report(rank_check(s.rank, d.antiflood, s.antiflood_params[:2], name))


def rank_check(rank: float, antiflood: bool | None, params: tuple[float, ...],
               name: str) -> Check:
    """The bot's rank and what it implies for commands and flood limits (PROTOCOL §4, §6);
    ``antiflood`` None when the channel's options were not seen, ``params`` (burst, rate)."""
    label = ranks.label(rank)
    flood = (f"the channel's antiflood is on (burst {params[0]:g}, {params[1]:g}/s)"
             if antiflood else
             "the channel's antiflood is off" if antiflood is not None else "")
    if rank >= 2:
        detail = ("can run /kick, /mute, /clear and /d… as commands, which is why Rosey escapes "
                  "a leading `/` in every reply; skips the channel's antiflood (only the "
                  "server's 20-message burst, 10/s)")
    elif rank >= 1.5:
        detail = ("can run /kick, /mute, /poll and /d… as commands, which is why Rosey escapes "
                  "a leading `/`; bound by the channel's antiflood when it is on")
    elif rank >= 0:
        detail = ("server commands such as /kick are ignored; bound by the channel's "
                  f"antiflood when it is on — a mod can `/rank {name} 2` to lift it")
        if rank < 1:
            detail += "; a guest may log in once per IP per 60 s"
    else:
        return Check(False, "rank", f"{label}: not logged in", "see the login line")
    return Check(True, "rank", f"{label}: {detail}" + (f"; {flood}" if flood else ""))


def _names(cfg: Config) -> refusals.Names:
    return refusals.Names(name=cfg.bot_name, domain=cfg.domain, channel=cfg.channel)


# ---- LLM -------------------------------------------------------------------------------


async def check_llm(cfg: Config, report: Report) -> None:
    from rosey.caller.service import chain_from_config

    for index, target in enumerate(chain_from_config(cfg)):
        label = "llm" if index == 0 else f"fallback {index}"
        await _check_target(cfg, label, target.provider, target.model, report)
    from rosey.caller.endpoint_health import check_endpoints  # each of several model hosts

    for h in await check_endpoints(cfg, cfg.conn.connect_timeout):
        report(Check(h.ok, h.name, h.detail, _provider_fix(h.provider, h.model, h.detail)))


def _one_token_kwargs(cfg: Config, provider: str) -> dict[str, Any]:
    from rosey.caller.service import backend_kwargs

    kwargs = backend_kwargs(cfg, provider)
    if provider == "openai":
        kwargs["max_tokens"] = 1
    else:
        kwargs["options"] = {**kwargs["options"], "num_predict": 1}
    return kwargs


async def _check_target(cfg: Config, label: str, provider: str, model: str,
                        report: Report) -> None:
    from rosey.caller import LLMError, make_backend

    backend = make_backend(provider, **_one_token_kwargs(cfg, provider))
    try:
        health = await backend.check(model, timeout=cfg.conn.connect_timeout)
        name = f"{label} {provider} {model}"
        report(Check(health.ok, name, health.detail, _provider_fix(provider, model,
                                                                   health.detail)))
        test = f"{label} test completion"
        if not health.ok:
            report(Check(False, test, "skipped", "fix the line above first"))
            return
        turns = [Turn("system", "Answer with one word."), Turn("user", "Say hello.")]
        started = time.monotonic()
        try:
            done = await backend.complete(turns, model, timeout=cfg.llm.response_timeout)
            answer = f"{done.text.strip()[:40]!r}"
        except LLMError as exc:
            if exc.kind != "empty":  # one token may well be blank: the call itself worked
                report(Check(False, test, str(exc), _completion_fix(exc.kind, cfg)))
                return
            answer = "an empty token"
        elapsed = time.monotonic() - started
        report(Check(True, test, f"{answer} in {elapsed * 1000:.0f} ms "
                     f"(llm.response_timeout {cfg.llm.response_timeout:g} s)"))
    finally:
        await backend.aclose()


def _provider_fix(provider: str, model: str, detail: str) -> str:
    low = detail.lower()
    if "rejected" in low:
        if provider == "openai":
            return ("set a valid key in OPENAI_API_KEY (under systemd: /etc/rosey/rosey.env) "
                    "or llm.openai_api_key")
        return "fix the credentials in providers.ollama.headers (the proxy's auth)"
    if "unreachable" in low or "no answer within" in low:
        if provider == "openai":
            return "check providers.openai.base_url and this machine's network or proxy"
        return ("start Ollama (`ollama serve`) or point llm.ollama_host / OLLAMA_HOST at it, "
                "e.g. OLLAMA_HOST=http://gpu-box:11434 (a remote Ollama must listen on "
                "0.0.0.0: OLLAMA_HOST=0.0.0.0 ollama serve)")
    if "not found" in low:
        if provider == "ollama":
            return f"run `ollama pull {model}` on the Ollama host, or set llm.model to one it has"
        return "set llm.model to a model this key can use (listed above)"
    return "see the detail above"


def _completion_fix(kind: str, cfg: Config) -> str:
    if kind == "timeout":
        return ("the model is slow or still loading: retry, raise llm.response_timeout "
                f"({cfg.llm.response_timeout:g} s) or use a smaller model")
    if kind == "rate_limited":
        return "the provider is rate limiting this key: check its quota and billing"
    if kind in ("auth", "not_found"):
        return "see the provider line above"
    return "check the provider's logs; the request itself was refused"
