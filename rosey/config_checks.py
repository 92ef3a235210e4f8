"""The config checks beyond types: one line per problem, naming the JSON path and the fix.

``check_semantics`` runs on a typed ``Config`` (the top level, and each channel's merged
copy: rosey.config maps a channel's problems to ``$.channels[i]``);
``secret_file_warnings`` on the raw file (a secret in a world-readable config).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rosey.config_schema import MESSAGE_LENGTH_MAX, MESSAGE_LENGTH_MIN, Config
from rosey.errors import ConfigError

SOCKET_PATH_LIMIT = 100  # Unix socket paths are limited to ~107 bytes; keep margin.
NAME_RE = re.compile(r"^[\w-]{1,20}$")
CHANNEL_RE = re.compile(r"^[\w-]{1,30}$")

Fail = Callable[[str, str], None]


def check_semantics(cfg: Config, source: str, errors: list[str] | None = None) -> None:
    """Raise the first problem as ``ConfigError``, or append every one to ``errors``."""
    def fail(path: str, problem: str) -> None:
        message = f"{source}: {path}: {problem}"
        if errors is None:
            raise ConfigError(message)
        errors.append(message)

    if cfg.channels:
        pass  # each entry's name is checked in its own channel's config
    elif not cfg.channel:
        fail("$.channel", "missing; set the CyTube channel name, e.g. \"channel\": "
             "\"MyChannel\" (or a \"channels\" list)")
    elif not CHANNEL_RE.match(cfg.channel):
        fail("$.channel", "expected 1-30 characters of a-z, A-Z, 0-9, - or _")
    if not re.match(r"^https?://", cfg.domain):
        fail("$.domain", "expected a URL starting with http:// or https://, e.g. https://cytu.be")
    if not 1 <= len(cfg.user) <= 2 or not cfg.user[0]:
        fail("$.user", "expected [\"BotName\", \"password\"] (password may be \"\" for a guest)")
    elif not NAME_RE.match(cfg.user[0]):
        fail("$.user[0]", "expected 1-20 characters of a-z, A-Z, 0-9, - or _")
    llm = cfg.llm
    keyless = bool(cfg.providers.openai.base_url or cfg.providers.openai.endpoints)
    if llm.enabled and llm.provider == "openai" and not llm.openai_api_key and not keyless:
        fail("$.llm.openai_api_key",
             "required for provider openai; set the OPENAI_API_KEY environment variable")
    for index, fallback in enumerate(cfg.providers.fallbacks):
        if fallback.provider == "openai" and not llm.openai_api_key and not keyless:
            fail(f"$.providers.fallbacks[{index}]",
                 "an openai fallback needs a key; set the OPENAI_API_KEY environment variable")
    if not re.match(r"^https?://", llm.ollama_host):
        fail("$.llm.ollama_host", "expected a URL such as http://localhost:11434")
    if llm.system_prompt_file and not Path(llm.system_prompt_file).is_file():
        fail("$.llm.system_prompt_file",
             f"{llm.system_prompt_file} does not exist; create it or remove the key")
    for index, trigger in enumerate(llm.llm_triggers):
        if trigger.startswith("re:"):
            try:
                re.compile(trigger[3:])
            except re.error as exc:
                fail(f"$.llm.llm_triggers[{index}]", f"invalid regex ({exc}); fix the pattern")
        elif not trigger.strip():
            fail(f"$.llm.llm_triggers[{index}]", "empty trigger; remove it")
    _positive(fail, "$.llm.llm_cooldown", llm.llm_cooldown, allow_zero=True)
    _positive(fail, "$.llm.response_timeout", llm.response_timeout)
    _positive(fail, "$.llm.first_token_timeout", llm.first_token_timeout, allow_zero=True)
    if llm.max_history_messages < 0:
        fail("$.llm.max_history_messages", "expected 0 or more")
    if cfg.budget.action == "switch" and not cfg.budget.switch_model:
        fail("$.budget.switch_model", "required when budget.action is \"switch\": the model "
             "to use once the budget is spent (with budget.switch_provider)")
    router = cfg.router
    for index, pattern in enumerate(router.blocklist):
        try:
            re.compile(pattern)
        except re.error as exc:
            fail(f"$.router.blocklist[{index}]", f"invalid regex ({exc}); fix the pattern")
    for name, persona in router.personas.items():
        if persona.endswith((".md", ".txt")) and not Path(persona).is_file():
            fail(f"$.router.personas.{name}", f"{persona} does not exist; create it")
    try:
        ZoneInfo(router.limits.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        fail("$.router.limits.timezone", "unknown time zone; use an IANA name such as "
             "Europe/Berlin or UTC")
    from rosey.router.commands import COMMANDS  # only the table: no router state

    for name in router.command_ranks:
        if name not in COMMANDS:
            fail(f"$.router.command_ranks.{name}",
                 "not a command; use one of " + ", ".join(sorted(COMMANDS)))
    if router.stats_interval < 0:
        fail("$.router.stats_interval", "expected 0 (no samples) or a number of seconds > 0")
    if router.retention_days <= 0:
        fail("$.router.retention_days", "expected a number > 0")
    if cfg.conn.message_length and not MESSAGE_LENGTH_MIN <= cfg.conn.message_length \
            <= MESSAGE_LENGTH_MAX:
        fail("$.conn.message_length", "expected 0 (read it from the channel) or "
             f"{MESSAGE_LENGTH_MIN}..{MESSAGE_LENGTH_MAX} (max-chat-message-length)")
    if cfg.conn.kick_backoff < 1:
        fail("$.conn.kick_backoff", "expected 1 or more seconds")
    if cfg.conn.max_parts < 1:
        fail("$.conn.max_parts", "expected 1 or more")
    if not 1 <= cfg.callers.count <= cfg.callers.max:
        fail("$.callers.count", f"expected 1..callers.max ({cfg.callers.max})")
    if cfg.callers.max > 64:
        fail("$.callers.max", "expected at most 64")
    if cfg.callers.slots < 1:
        fail("$.callers.slots", "expected 1 or more")
    for key in ("conn_port", "router_port", "caller_base_port", "events_port"):
        port = getattr(cfg.metrics, key)
        if not 0 <= port <= 65535 - (cfg.callers.max if key == "caller_base_port" else 0):
            fail(f"$.metrics.{key}", "expected a TCP port number")
    longest = str(Path(cfg.paths.run_dir) / "supervisor.sock")
    if len(longest.encode()) > SOCKET_PATH_LIMIT:
        fail("$.paths.run_dir",
             f"too long for Unix sockets ({len(longest.encode())} > {SOCKET_PATH_LIMIT} bytes); "
             "use a shorter path, e.g. /run/rosey")


def _positive(fail: Fail, path: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        fail(path, "expected a number " + (">= 0" if allow_zero else "> 0"))


_SECRET_WORDS = ("a password", "an API key", "a channel password", "an authorization header")


def secret_file_warnings(path: Path, raw: Any) -> list[str]:
    """A warning when a config file holding a secret can be read by every local user."""
    if not isinstance(raw, dict):
        return []
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if not mode & stat.S_IROTH:
        return []
    user, headers = raw.get("user"), _dig(raw, "providers", "ollama", "headers")
    held = [
        isinstance(user, list) and len(user) > 1 and bool(user[1]),
        bool(_dig(raw, "llm", "openai_api_key")),
        bool(_dig(raw, "conn", "channel_password")) or any(
            bool(_dig(entry, "conn", "channel_password")) for entry in _entries(raw)),
        isinstance(headers, dict) and any(k.lower() == "authorization" for k in headers),
    ]
    what = [word for word, has in zip(_SECRET_WORDS, held, strict=True) if has]
    if not what:
        return []
    return [f"{path}: warning: readable by every user (mode {stat.S_IMODE(mode):04o}) and holds "
            f"{' and '.join(what)}; run `chmod 600 {path}`, or move secrets to the "
            "environment (ROSEY_PASSWORD, OPENAI_API_KEY, ROSEY_CHANNEL_PASSWORD; under "
            "systemd in /etc/rosey/rosey.env, mode 600)"]


def _entries(raw: dict[str, Any]) -> list[Any]:
    entries = raw.get("channels")
    return entries if isinstance(entries, list) else []


def _dig(raw: Any, *keys: str) -> Any:
    for key in keys:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw
