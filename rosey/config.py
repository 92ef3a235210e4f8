"""Load and validate ``config.json`` plus the environment: the only reader of config.

Errors are ``ConfigError`` whose message is one line naming the JSON path and the
fix; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from rosey.config_schema import MESSAGE_LENGTH_MAX, MESSAGE_LENGTH_MIN, Config

__all__ = ["DEFAULT_SYSTEM_PROMPT", "CheckReport", "Config", "ConfigError", "check_config_file",
           "collect_errors", "load_config"]

DEFAULT_SYSTEM_PROMPT = (
    "You are {bot_name}, a friendly regular in the CyTube channel {channel}. "
    "You are talking with {user}. The channel is playing: {now_playing}. Answer in one or "
    "two short sentences of plain text, no markdown, no lists."
)

SOCKET_PATH_LIMIT = 100  # Unix socket paths are limited to ~107 bytes; keep margin.
NAME_RE = re.compile(r"^[\w-]{1,20}$")
CHANNEL_RE = re.compile(r"^[\w-]{1,30}$")


class ConfigError(Exception):
    """A config problem, already phrased for the operator: ``path: problem; fix``."""


def load_config(path: str | os.PathLike[str] | None = None,
                env: dict[str, str] | None = None) -> Config:
    """Read, validate and resolve the config; ``env`` defaults to ``os.environ``."""
    env = dict(os.environ if env is None else env)
    cfg_path = Path(path or env.get("ROSEY_CONFIG") or "config.json")
    if not cfg_path.exists():
        raise ConfigError(
            f"{cfg_path}: no such file; write the example there with "
            f"`rosey init-config {shlex.quote(str(cfg_path))}`, then set domain, channel and user"
        )
    try:
        raw = msgspec.json.decode(cfg_path.read_bytes())
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{cfg_path}: not valid JSON ({exc}); fix the syntax") from exc
    return parse_config(raw, base_dir=cfg_path.resolve().parent, env=env,
                        source=str(cfg_path))


def parse_config(raw: Any, *, base_dir: Path, env: dict[str, str],
                 source: str = "config.json") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: $: expected a JSON object at the top level")
    _reject_unknown_keys(raw, Config, "$", source)
    try:
        cfg = msgspec.convert(raw, Config, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_phrase_validation_error(str(exc))}") from exc
    _apply_env(cfg, env)
    _resolve_paths(cfg, base_dir)
    _check_semantics(cfg, source)
    return cfg


@dataclass
class CheckReport:
    """What ``rosey check-config`` prints: every error (one line each) and warnings."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: Config | None = None


def check_config_file(path: str | os.PathLike[str] | None = None,
                      env: dict[str, str] | None = None) -> CheckReport:
    """Like ``load_config`` but reports every problem at once instead of raising the first."""
    env = dict(os.environ if env is None else env)
    cfg_path = Path(path or env.get("ROSEY_CONFIG") or "config.json")
    try:
        config: Config | None = load_config(cfg_path, env)
        errors: list[str] = []
        raw = msgspec.json.decode(cfg_path.read_bytes())
    except ConfigError as first:
        config = None
        try:
            raw = msgspec.json.decode(cfg_path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return CheckReport([str(first)])  # missing file or bad JSON: nothing more to say
        errors = collect_errors(raw, base_dir=cfg_path.resolve().parent, env=env,
                                source=str(cfg_path)) or [str(first)]
    return CheckReport(errors, secret_file_warnings(cfg_path, raw), config)


def collect_errors(raw: Any, *, base_dir: Path, env: dict[str, str],
                   source: str = "config.json") -> list[str]:
    """Every problem in ``raw``, each one line ``source: $.path: problem; fix``; [] if valid.

    Unknown keys and wrong types are dropped (so their defaults stand in) and reported;
    the semantic checks then run on what is left, skipping paths already reported.
    """
    if not isinstance(raw, dict):
        return [f"{source}: $: expected a JSON object at the top level"]
    errors: list[str] = []
    bad: list[str] = []
    cleaned = _drop_invalid(raw, Config, "$", source, errors, bad)
    try:
        cfg = msgspec.convert(cleaned, Config, strict=True)
    except msgspec.ValidationError as exc:  # pragma: no cover - every field was checked
        return [*errors, f"{source}: {_phrase_validation_error(str(exc))}"]
    _apply_env(cfg, env)
    _resolve_paths(cfg, base_dir)
    semantic: list[str] = []
    _check_semantics(cfg, source, semantic)
    heads = tuple(f"{source}: {path}{sep}" for path in bad for sep in (":", ".", "["))
    return errors + [message for message in semantic if not message.startswith(heads)]


def _drop_invalid(raw: dict[str, Any], struct: type, where: str, source: str,
                  errors: list[str], bad: list[str]) -> dict[str, Any]:
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{where}.{key}"
        if key not in fields:
            errors.append(_unknown_key(key, list(fields), path, source))
            continue
        sub = _struct_type(fields[key].type)
        if sub is not None and isinstance(value, dict):
            kept[key] = _drop_invalid(value, sub, path, source, errors, bad)
            continue
        try:
            msgspec.convert(value, fields[key].type, strict=True)
        except msgspec.ValidationError as exc:
            message = str(exc)
            at = "`$" + path[1:]
            message = message.replace(" - at `$", f" - at {at}") if " - at `$" in message \
                else f"{message} - at {at}`"
            errors.append(f"{source}: {_phrase_validation_error(message)}")
            bad.append(path)
            continue
        kept[key] = value
    return kept


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
        bool(_dig(raw, "conn", "channel_password")),
        isinstance(headers, dict) and any(k.lower() == "authorization" for k in headers),
    ]
    what = [word for word, has in zip(_SECRET_WORDS, held, strict=True) if has]
    if not what:
        return []
    return [f"{path}: warning: readable by every user (mode {stat.S_IMODE(mode):04o}) and holds "
            f"{' and '.join(what)}; run `chmod 600 {path}`, or move secrets to the "
            "environment (ROSEY_PASSWORD, OPENAI_API_KEY, ROSEY_CHANNEL_PASSWORD; under "
            "systemd in /etc/rosey/rosey.env, mode 600)"]


def _dig(raw: Any, *keys: str) -> Any:
    for key in keys:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw


# ---- unknown keys ---------------------------------------------------------


def _reject_unknown_keys(raw: dict[str, Any], struct: type, where: str, source: str) -> None:
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(_unknown_key(key, list(fields), f"{where}.{key}", source))
        sub = _struct_type(fields[key].type)
        if sub is not None and isinstance(value, dict):
            _reject_unknown_keys(value, sub, f"{where}.{key}", source)


def _unknown_key(key: str, known: list[str], path: str, source: str) -> str:
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    fix = f"did you mean {hint[0]!r}?" if hint else f"known keys here: {', '.join(sorted(known))}"
    return f"{source}: {path}: unknown key; {fix}"


def _struct_type(tp: Any) -> type | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    return None


_VALIDATION_RE = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$")


def _phrase_validation_error(message: str) -> str:
    match = _VALIDATION_RE.match(message)
    if not match:
        return f"$: {message}"
    what = match["what"].replace("`", "")
    path = "$" + match["path"]
    expected = re.match(r"Expected (\w+), got (\w+)", what)
    if expected:
        want = _TYPE_WORDS.get(expected[1], expected[1])
        return f"{path}: expected {want}, got {_TYPE_WORDS.get(expected[2], expected[2])}"
    missing = re.match(r"Object missing required field (\w+)$", what)
    if missing:
        return f"{path}: missing key {missing[1]!r}; add it"
    extra = re.match(r"Object contains unknown field (\w+)$", what)
    if extra:
        return f"{path}.{extra[1]}: unknown key; remove it or fix its spelling"
    if what.startswith("Invalid enum value"):
        choices = _literal_choices(path)
        if choices:
            value = what.split("value ", 1)[1]
            return f"{path}: invalid value {value}; expected one of {', '.join(choices)}"
    return f"{path}: {what}"


_TYPE_WORDS = {
    "float": "a number", "int": "a whole number", "str": "a string", "bool": "true or false",
    "array": "a list", "object": "an object", "null": "null",
}


def _literal_choices(path: str) -> list[str]:
    tp: Any = Config
    for part in path.lstrip("$").strip(".").split("."):
        fields = {f.encode_name: f.type for f in msgspec.structs.fields(tp)}
        if part not in fields:
            return []
        tp = fields[part]
    return [str(arg) for arg in get_args(tp)]


# ---- environment and paths ------------------------------------------------


def _apply_env(cfg: Config, env: dict[str, str]) -> None:
    if env.get("OPENAI_API_KEY"):
        cfg.llm.openai_api_key = env["OPENAI_API_KEY"]
    if env.get("OLLAMA_HOST"):
        cfg.llm.ollama_host = _normalise_ollama_host(env["OLLAMA_HOST"])
    if "ROSEY_PASSWORD" in env:
        cfg.user = [cfg.user[0], env["ROSEY_PASSWORD"]]
    if env.get("ROSEY_CHANNEL_PASSWORD"):
        cfg.conn.channel_password = env["ROSEY_CHANNEL_PASSWORD"]
    if env.get("ROSEY_RUN_DIR"):
        cfg.paths.run_dir = env["ROSEY_RUN_DIR"]
    if env.get("ROSEY_LOG_LEVEL"):
        cfg.log.level = env["ROSEY_LOG_LEVEL"].upper()  # type: ignore[assignment]


def _normalise_ollama_host(host: str) -> str:
    # OLLAMA_HOST is often written bare ("0.0.0.0:11434"), as the ollama CLI accepts.
    return host if "://" in host else f"http://{host}"


def _resolve_paths(cfg: Config, base_dir: Path) -> None:
    cfg.paths.run_dir = str((base_dir / cfg.paths.run_dir).resolve())
    cfg.paths.data_dir = str((base_dir / cfg.paths.data_dir).resolve())
    if cfg.llm.system_prompt_file:
        cfg.llm.system_prompt_file = str((base_dir / cfg.llm.system_prompt_file).resolve())
    cfg.paths.database = str((Path(cfg.paths.data_dir) / cfg.paths.database).resolve())
    for name, persona in cfg.router.personas.items():
        if persona.endswith((".md", ".txt")):
            cfg.router.personas[name] = str((base_dir / persona).resolve())


# ---- semantics ------------------------------------------------------------


def _check_semantics(cfg: Config, source: str, errors: list[str] | None = None) -> None:
    """Raise the first problem as ``ConfigError``, or append every one to ``errors``."""
    def fail(path: str, problem: str) -> None:
        message = f"{source}: {path}: {problem}"
        if errors is None:
            raise ConfigError(message)
        errors.append(message)

    if not cfg.channel:
        fail("$.channel", "missing; set the CyTube channel name, e.g. \"channel\": \"MyChannel\"")
    elif not CHANNEL_RE.match(cfg.channel):
        fail("$.channel", "expected 1-30 characters of a-z, A-Z, 0-9, - or _")
    if not re.match(r"^https?://", cfg.domain):
        fail("$.domain", "expected a URL starting with http:// or https://, e.g. https://cytu.be")
    if not 1 <= len(cfg.user) <= 2 or not cfg.user[0]:
        fail("$.user", "expected [\"BotName\", \"password\"] (password may be \"\" for a guest)")
    elif not NAME_RE.match(cfg.user[0]):
        fail("$.user[0]", "expected 1-20 characters of a-z, A-Z, 0-9, - or _")
    llm = cfg.llm
    if llm.enabled and llm.provider == "openai" and not llm.openai_api_key and \
            not cfg.providers.openai.base_url:
        fail("$.llm.openai_api_key",
             "required for provider openai; set the OPENAI_API_KEY environment variable")
    for index, fallback in enumerate(cfg.providers.fallbacks):
        if fallback.provider == "openai" and not llm.openai_api_key and \
                not cfg.providers.openai.base_url:
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


def _positive(fail: Any, path: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        fail(path, "expected a number " + (">= 0" if allow_zero else "> 0"))


Provider = Literal["openai", "ollama"]
