"""Load and validate ``config.json`` plus the environment: the only reader of config.

Errors are ``ConfigError`` whose message is one line naming the JSON path and the
fix; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import msgspec

from rosey.config_channels import SECTIONS, SHARED_KEYS, channel_configs
from rosey.config_checks import check_semantics, secret_file_warnings
from rosey.config_endpoints import ProviderName, endpoint_problems, provider_endpoints
from rosey.config_schema import Config, Endpoint
from rosey.errors import ConfigError

__all__ = ["DEFAULT_SYSTEM_PROMPT", "CheckReport", "Config", "ConfigError", "Endpoint",
           "channel_configs", "check_config_file", "collect_errors", "load_config",
           "provider_endpoints"]

DEFAULT_SYSTEM_PROMPT = (
    "You are {bot_name}, a friendly regular in the CyTube channel {channel}. "
    "You are talking with {user}. The channel is playing: {now_playing}. Answer in one or "
    "two short sentences of plain text, no markdown, no lists."
)

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
    override_errors: list[str] = []
    _clean_overrides(raw, source, override_errors, [])
    if override_errors:
        raise ConfigError(override_errors[0])
    _apply_env(cfg, env)
    _resolve_paths(cfg, base_dir)
    check_semantics(cfg, source)
    problems = _shape_errors(cfg, raw, env, source) or _channel_errors(cfg, source, [])
    if problems:
        raise ConfigError(problems[0])
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
    cleaned = _clean_overrides(_drop_invalid(raw, Config, "$", source, errors, bad), source,
                               errors, bad)
    try:
        cfg = msgspec.convert(cleaned, Config, strict=True)
    except msgspec.ValidationError as exc:  # pragma: no cover - every field was checked
        return [*errors, f"{source}: {_phrase_validation_error(str(exc))}"]
    _apply_env(cfg, env)
    _resolve_paths(cfg, base_dir)
    semantic: list[str] = []
    check_semantics(cfg, source, semantic)
    semantic += _shape_errors(cfg, cleaned, env, source)
    semantic += _channel_errors(cfg, source, semantic)
    heads = tuple(f"{source}: {path}{sep}" for path in bad for sep in (":", ".", "["))
    if "$.channels" in bad:  # the list was dropped: its absence is not a second problem
        heads += (f"{source}: $.channel:",)
    return errors + [message for message in semantic if not message.startswith(heads)]


# ---- channels and endpoints -----------------------------------------------


def _clean_overrides(raw: dict[str, Any], source: str, errors: list[str],
                     bad: list[str]) -> dict[str, Any]:
    """Check each ``channels`` entry's partial sections against the full ones (unknown
    keys, types, keys that are the deployment's); return ``raw`` without the bad keys."""
    entries = raw.get("channels")
    if not isinstance(entries, list):
        return raw
    kept_entries = []
    for index, entry in enumerate(entries):
        entry = dict(entry)
        for section, struct in SECTIONS.items():
            where = f"$.channels[{index}].{section}"
            override = entry.get(section) or {}
            for key, fix in SHARED_KEYS.get(section, {}).items():
                if key in override:
                    errors.append(f"{source}: {where}.{key}: not per channel; {fix}")
                    bad.append(f"{where}.{key}")
                    override = {k: v for k, v in override.items() if k != key}
            entry[section] = _drop_invalid(override, struct, where, source, errors, bad)
        kept_entries.append(entry)
    return {**raw, "channels": kept_entries}


def _shape_errors(cfg: Config, raw: dict[str, Any], env: dict[str, str],
                  source: str) -> list[str]:
    """One channel key or a list; unique channel names; endpoints (also vs the old keys)."""
    problems: list[tuple[str, str]] = []
    if cfg.channels:
        named = raw.get("channel")
        if named:
            problems.append(("$.channels", f"given together with $.channel; keep one: move "
                             f"\"channel\": {named!r} into the list as {{\"channel\": "
                             f"{named!r}}} and remove the top-level key"))
        else:
            cfg.channel = cfg.channels[0].channel
        first: dict[str, int] = {}
        for index, entry in enumerate(cfg.channels):
            key = entry.channel.lower()  # CyTube channel names ignore case
            if key in first:
                problems.append((f"$.channels[{index}].channel",
                                 f"{entry.channel!r} is also $.channels[{first[key]}]; list "
                                 "each channel once"))
            first.setdefault(key, index)
    legacy: dict[ProviderName, str] = {}
    llm = raw.get("llm")
    if env.get("OLLAMA_HOST"):
        legacy["ollama"] = "the OLLAMA_HOST environment variable"
    elif isinstance(llm, dict) and "ollama_host" in llm:
        legacy["ollama"] = "$.llm.ollama_host"
    if cfg.providers.openai.base_url:
        legacy["openai"] = "$.providers.openai.base_url"
    problems += endpoint_problems(cfg, legacy)
    return [f"{source}: {path}: {problem}" for path, problem in problems]


def _channel_errors(cfg: Config, source: str, reported: list[str]) -> list[str]:
    """Each channel's own problems (its merged config's, less the top level's), each at
    ``$.channels[i]…``: e.g. a missing prompt file named in one entry."""
    if not cfg.channels:
        return []
    top: list[str] = []
    check_semantics(cfg, source, top)
    known = set(top) | set(reported)
    out: list[str] = []
    for index, child in enumerate(channel_configs(cfg)):
        found: list[str] = []
        check_semantics(child, source, found)
        out += [message.replace(f"{source}: $", f"{source}: $.channels[{index}]", 1)
                for message in found if message not in known]
    return out


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
        item = _item_struct(fields[key].type)
        if item is not None and isinstance(value, list):  # entries: their keys one by one
            before = len(errors)
            value = [_drop_invalid(elem, item, f"{path}[{index}]", source, errors, bad)
                     if isinstance(elem, dict) else elem for index, elem in enumerate(value)]
            if len(errors) > before:  # reported inside: the list is left out, once
                bad.append(path)
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


# ---- unknown keys ---------------------------------------------------------


def _reject_unknown_keys(raw: dict[str, Any], struct: type, where: str, source: str) -> None:
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(_unknown_key(key, list(fields), f"{where}.{key}", source))
        sub = _struct_type(fields[key].type)
        if sub is not None and isinstance(value, dict):
            _reject_unknown_keys(value, sub, f"{where}.{key}", source)
        item = _item_struct(fields[key].type)
        if item is not None and isinstance(value, list):
            for index, elem in enumerate(value):
                if isinstance(elem, dict):
                    _reject_unknown_keys(elem, item, f"{where}.{key}[{index}]", source)


def _unknown_key(key: str, known: list[str], path: str, source: str) -> str:
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    fix = f"did you mean {hint[0]!r}?" if hint else f"known keys here: {', '.join(sorted(known))}"
    return f"{source}: {path}: unknown key; {fix}"


def _struct_type(tp: Any) -> type | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    return None


def _item_struct(tp: Any) -> type | None:
    """``Fallback`` of ``list[Fallback]`` (entries such as channels and endpoints)."""
    return _struct_type(get_args(tp)[0]) if get_origin(tp) is list else None


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
    path = re.sub(r"^\$\.channels\[\d+\]", "$", path)  # an entry's sections are the top's
    tp: Any = Config
    for part in re.sub(r"\[\d+\]", "", path).lstrip("$").strip(".").split("."):
        tp = _item_struct(tp) or tp
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
    for entry in cfg.channels:  # overrides are resolved the same way, so merging needs no base
        if isinstance(entry.llm.get("system_prompt_file"), str) and \
                entry.llm["system_prompt_file"]:
            entry.llm["system_prompt_file"] = str((base_dir / entry.llm["system_prompt_file"])
                                                  .resolve())
        personas = entry.router.get("personas")
        if isinstance(personas, dict):
            for name, persona in personas.items():
                if isinstance(persona, str) and persona.endswith((".md", ".txt")):
                    personas[name] = str((base_dir / persona).resolve())

