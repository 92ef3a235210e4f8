"""``rosey doctor``: pre-flight checks of a deployment, each a ✔/✘ line with the fix.

CyTube: socketconfig reachable, the channel's message length, socket.io connect +
``joinChannel`` + ``login`` (then it leaves), the bot's rank and what it implies.
LLM: for ``llm.provider``/``llm.model`` and each ``providers.fallbacks`` entry, host
reachable, key valid and model present (``Backend.check``), then a one-token completion
with its latency.  Nothing is written; the only side effects are one connection (it
counts against CyTube's per-IP connect bucket) and, for a guest, one guest login (one
per IP per 60 s).  If the bot is already in the channel, the login is not repeated:
that would kick it ("Duplicate login").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from rosey.config import Config
from rosey.conn import ranks, refusals
from rosey.protocol import Turn

SOCKET_WAIT = 10.0  # python-socketio's connect wait_timeout (its default of 1 s is too short)
DEFAULT_MESSAGE_LENGTH = 320


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
    await check_cytube(cfg, report)
    await check_llm(cfg, report)


# ---- CyTube ----------------------------------------------------------------------------


async def check_cytube(cfg: Config, report: Report) -> None:
    base = cfg.domain.rstrip("/")
    url = f"{base}/socketconfig/{cfg.channel}.json"
    timeout = aiohttp.ClientTimeout(total=cfg.conn.connect_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        server = await _socketconfig(http, url, cfg, report)
        if server is None:
            return
        report(await _message_length(http, f"{base}/r/{cfg.channel}", cfg))
    await _login(cfg, server, report)


async def _socketconfig(http: aiohttp.ClientSession, url: str, cfg: Config,
                        report: Report) -> str | None:
    name = "socketconfig"
    try:
        async with http.get(url) as resp:
            if resp.status == 404:
                report(Check(False, name, f"{url}: channel {cfg.channel!r} does not exist (404)",
                             refusals.fix("no_channel", _names(cfg))))
                return None
            if resp.status != 200:
                report(Check(False, name, f"{url}: HTTP {resp.status}",
                             "check `domain`; the site may be down or behind a login wall"))
                return None
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        report(Check(False, name, f"cannot reach {url} ({type(exc).__name__}: {exc})",
                     f"check `domain` ({cfg.domain}): the CyTube site's URL, e.g. "
                     "https://cytu.be, reachable from this machine (DNS, firewall, proxy)"))
        return None
    servers = body.get("servers") if isinstance(body, dict) else None
    usable = [s for s in servers or [] if isinstance(s, dict) and s.get("url")]
    if not usable:
        report(Check(False, name, f"{url} lists no socket servers",
                     "the site is misconfigured; ask its admin"))
        return None
    server = str(([s for s in usable if s.get("secure")] or usable)[0]["url"])
    report(Check(True, name, f"{url} → socket server {server}"))
    return server


async def _message_length(http: aiohttp.ClientSession, page_url: str, cfg: Config) -> Check:
    from rosey.conn.client import chat_maxlength

    name = "message length"
    if cfg.conn.message_length:
        return Check(True, name, f"{cfg.conn.message_length} (conn.message_length); replies "
                     "are split to it")
    found = None
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, UnicodeError):
        async with http.get(page_url) as resp:
            if resp.status == 200:
                found = chat_maxlength(await resp.text())
    if found and 40 <= found <= 1000:
        return Check(True, name, f"{found} characters (the channel page's chat maxlength); "
                     "replies are split to it")
    return Check(True, name, f"not shown on {page_url}; {DEFAULT_MESSAGE_LENGTH} (CyTube's "
                 "default) will be used — set conn.message_length if the server differs")


class _Probe:
    """Every frame of one socket into a queue, with the state the checks read."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.rank = -1.0
        self.opts: dict[str, Any] = {}
        self.refusal = ""

    async def on_frame(self, event: str, data: Any = None) -> None:
        if event == "rank" and isinstance(data, (int, float)):
            self.rank = float(data)
        elif event == "channelOpts" and isinstance(data, dict):
            self.opts = data
        await self.frames.put((event, data))

    async def on_connect_error(self, data: Any = None) -> None:
        message = data.get("message") if isinstance(data, dict) else data
        self.refusal = str(message or "")

    async def until(self, events: set[str], timeout: float,
                    match: Callable[[Any], bool] = lambda _d: True) -> tuple[str, Any] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                event, data = await asyncio.wait_for(self.frames.get(), left)
            except TimeoutError:
                return None
            if event in events and match(data):
                return event, data
        return None


async def _login(cfg: Config, server: str, report: Report) -> None:
    import socketio

    probe = _Probe()
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("connect_error", probe.on_connect_error)
    sio.on("*", probe.on_frame)
    try:
        await sio.connect(server, transports=["websocket"], wait_timeout=SOCKET_WAIT)
    except (socketio.exceptions.ConnectionError, OSError) as exc:
        reason = probe.refusal or str(exc)
        report(Check(False, "connect", f"{server}: {reason}", _connect_fix(reason, cfg)))
        return
    try:
        await _join_and_login(cfg, sio, probe, report)
    finally:
        with contextlib.suppress(Exception):
            await sio.disconnect()


async def _join_and_login(cfg: Config, sio: Any, probe: _Probe, report: Report) -> None:
    name, wait = cfg.bot_name, SOCKET_WAIT
    join: dict[str, Any] = {"name": cfg.channel}
    if cfg.conn.channel_password:
        join["pw"] = cfg.conn.channel_password
    await sio.emit("joinChannel", join)
    got = await probe.until({"userlist", "needPassword", "kick"}, wait)
    if got is None or got[0] == "kick":
        why = _kick_text(got)
        report(Check(False, "join", f"joinChannel {cfg.channel}: {why}",
                     _kick_fix(why, cfg) or "check `channel`; the server kicked or ignored "
                     "the join"))
        return
    locked = got[0] == "needPassword"
    if not locked:
        for entry in got[1] if isinstance(got[1], list) else []:
            if isinstance(entry, dict) and str(entry.get("name", "")).lower() == name.lower():
                rank = float(entry.get("rank", 0))
                report(Check(True, "login", f"{entry.get('name')} is already in {cfg.channel} "
                             "(the running bot?); not logging in again, that would kick it"))
                report(rank_check(rank, probe.opts, name))
                return
    await sio.emit("login", {"name": name, "pw": cfg.password} if cfg.password else
                   {"name": name})
    got = await probe.until({"login", "kick"}, wait)
    if got is not None and got[0] == "kick":  # a channel ban by name: kicked once logged in
        why = _kick_text(got)
        report(Check(False, "login", f"{name} was kicked: {why}",
                     _kick_fix(why, cfg) or "see the kick reason"))
        return
    if got is None or not isinstance(got[1], dict):
        report(Check(False, "login", f"no login answer within {wait:g}s",
                     "run doctor again; if it persists the server is overloaded"))
        return
    if not got[1].get("success"):
        error = str(got[1].get("error", "refused"))
        report(Check(False, "login", f"{name}: {error}", _login_fix(error, cfg)))
        return
    # The channel rank follows the login (rank 1, login, addUser, rank N, ...)
    def same(data: Any) -> bool:
        return isinstance(data, dict) and str(data.get("name", "")).lower() == name.lower()

    await probe.until({"setUserRank"}, 2.0, same)
    if locked and await probe.until({"userlist"}, 2.0) is None:
        report(Check(False, "join", f"{cfg.channel} asks for a password",
                     refusals.fix("channel_password", _names(cfg))))
        return
    kind = "guest" if not cfg.password else "registered account"
    report(Check(True, "login", f"joined {cfg.channel} as {name} ({kind}), then left"))
    report(rank_check(probe.rank, probe.opts, name))


def rank_check(rank: float, opts: dict[str, Any], name: str) -> Check:
    """The bot's rank and what it implies for commands and flood limits (PROTOCOL §4, §6)."""
    label = ranks.label(rank)
    antiflood = opts.get("chat_antiflood")
    params = opts.get("chat_antiflood_params") or {}
    flood = (f"the channel's antiflood is on (burst {params.get('burst', 4):g}, "
             f"{params.get('sustained', 1):g}/s)" if antiflood else
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


def _kick_text(got: tuple[str, Any] | None) -> str:
    if got is None:
        return "no answer"
    return str(got[1].get("reason") or "kicked") if isinstance(got[1], dict) else "kicked"


def _kick_fix(why: str, cfg: Config) -> str:
    reason = refusals.kick_reason(why)
    return refusals.fix(reason, _names(cfg)) if reason else ""


def _connect_fix(reason: str, cfg: Config) -> str:
    return refusals.fix(refusals.connect_reason(reason), _names(cfg))


def _login_fix(error: str, cfg: Config) -> str:
    return refusals.fix(refusals.login_reason(error), _names(cfg))


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
