"""Config validation: one test per error class, env precedence, the example and docs/CONFIG.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from rosey.config import ConfigError, load_config
from rosey.config_schema import Config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"domain": "http://127.0.0.1:8080", "channel": "testchan", "user": ["roseybot", "pw"]}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def error_for(tmp_path: Path, data: object, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data), env=env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


def with_llm(**llm: object) -> dict[str, object]:
    return {**MINIMAL, "llm": llm}


def test_minimal_config_gets_original_product_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL), env={})
    assert cfg.llm.llm_cooldown == 10
    assert cfg.llm.max_history_messages == 10
    assert cfg.llm.response_timeout == 30
    assert cfg.llm.ollama_host == "http://localhost:11434"
    assert cfg.llm.llm_triggers == []
    assert (cfg.callers.count, cfg.callers.slots) == (1, 8)
    assert cfg.conn.message_length == 0  # auto: the channel page's maxlength, else 320
    assert cfg.paths.run_dir == str(tmp_path / "run")


def test_missing_file_says_what_to_create(tmp_path: Path) -> None:
    # The command it names works from any install (tests/unit/test_packaging.py runs it).
    with pytest.raises(ConfigError, match=re.escape(
            f"nope.json: no such file; write the example there with "
            f"`rosey init-config {tmp_path / 'nope.json'}`")):
        load_config(tmp_path / "nope.json", env={})


def test_invalid_json(tmp_path: Path) -> None:
    assert "not valid JSON" in error_for(tmp_path, '{"channel": ')


def test_top_level_must_be_object(tmp_path: Path) -> None:
    assert "expected a JSON object" in error_for(tmp_path, "[1, 2]")


def test_unknown_key_gets_did_you_mean(tmp_path: Path) -> None:
    message = error_for(tmp_path, with_llm(llm_cooldwn=5))
    assert "$.llm.llm_cooldwn: unknown key; did you mean 'llm_cooldown'?" in message


def test_unknown_nested_key(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**MINIMAL, "router": {"limits": {"global_cooldwn": 1}}})
    assert "$.router.limits.global_cooldwn" in message and "global_cooldown" in message


def test_wrong_type_names_path_and_expected_type(tmp_path: Path) -> None:
    message = error_for(tmp_path, with_llm(llm_cooldown="5"))
    assert "$.llm.llm_cooldown: expected a number, got a string" in message


def test_bad_enum_lists_choices(tmp_path: Path) -> None:
    message = error_for(tmp_path, with_llm(provider="gpt"))
    assert "$.llm.provider" in message and "openai, ollama" in message


def test_missing_channel(tmp_path: Path) -> None:
    assert "$.channel: missing" in error_for(tmp_path, {"user": ["roseybot"]})


def test_bad_user_name(tmp_path: Path) -> None:
    assert "$.user[0]" in error_for(tmp_path, {**MINIMAL, "user": ["bad name!"]})


def test_openai_needs_key(tmp_path: Path) -> None:
    message = error_for(tmp_path, with_llm(provider="openai"))
    assert "$.llm.openai_api_key" in message and "OPENAI_API_KEY" in message


def test_invalid_trigger_regex_names_entry(tmp_path: Path) -> None:
    message = error_for(tmp_path, with_llm(llm_triggers=["rosey", "re:(unclosed"]))
    assert "$.llm.llm_triggers[1]: invalid regex" in message


def test_negative_number(tmp_path: Path) -> None:
    assert "$.llm.response_timeout" in error_for(tmp_path, with_llm(response_timeout=0))


def test_callers_count_within_max(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**MINIMAL, "callers": {"count": 9, "max": 8}})
    assert "$.callers.count" in message


def test_missing_prompt_file(tmp_path: Path) -> None:
    assert "$.llm.system_prompt_file" in error_for(
        tmp_path, with_llm(system_prompt_file="nope.md"))


def test_run_dir_too_long_for_unix_sockets(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**MINIMAL, "paths": {"run_dir": "x" * 120}})
    assert "$.paths.run_dir" in message and "too long" in message


def test_env_wins_for_secrets_and_guest_iff_empty_password(tmp_path: Path) -> None:
    path = write(tmp_path, with_llm(provider="openai", openai_api_key="sk-file"))
    cfg = load_config(path, env={"OPENAI_API_KEY": "sk-env", "OLLAMA_HOST": "10.0.0.5:11434",
                                 "ROSEY_PASSWORD": ""})
    assert cfg.llm.openai_api_key == "sk-env"
    assert cfg.llm.ollama_host == "http://10.0.0.5:11434"
    assert cfg.password == ""  # env emptied it: guest login
    cfg = load_config(path, env={})
    assert cfg.llm.openai_api_key == "sk-file" and cfg.password == "pw"


def test_prompt_file_resolved_against_config_folder(tmp_path: Path) -> None:
    (tmp_path / "prompt.md").write_text("You are a pirate.")
    cfg = load_config(write(tmp_path, with_llm(system_prompt_file="prompt.md")), env={})
    assert cfg.llm.system_prompt_file == str(tmp_path / "prompt.md")


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "etc" / "config.example.json", env={})
    defaults = msgspec.to_builtins(Config())
    example = json.loads((ROOT / "etc" / "config.example.json").read_text())
    # The example documents every section and key the schema has.
    for section, keys in defaults.items():
        if isinstance(keys, dict):
            assert set(keys) <= set(example[section]), section
    for provider in ("openai", "ollama"):
        assert set(defaults["providers"][provider]) <= set(example["providers"][provider])
    assert cfg.channel == "YourChannel"


def _schema_keys(value: object, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(sub, dict) and sub and key not in ("headers", "prices"):
                keys |= _schema_keys(sub, path)
            else:
                keys.add(path)
    return keys


def test_config_reference_documents_every_key() -> None:
    reference = (ROOT / "docs" / "CONFIG.md").read_text()
    documented = set(re.findall(r"^\| `([\w.]+)` \|", reference, re.MULTILINE))
    expected = _schema_keys(msgspec.to_builtins(Config()))
    assert expected - documented == set()
    assert documented - expected == set(), "docs/CONFIG.md lists keys the schema lacks"


@pytest.mark.integration
def test_check_config_cli_exit_code_2_and_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, with_llm(llm_cooldwn=5))
    done = subprocess.run([sys.executable, "-m", "rosey.cli.main", "check-config", str(path)],
                          capture_output=True, text=True, env={"PATH": "/usr/bin"}, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "did you mean 'llm_cooldown'" in done.stderr
    path = write(tmp_path, MINIMAL)
    done = subprocess.run([sys.executable, "-m", "rosey.cli.main", "check-config", str(path)],
                          capture_output=True, text=True, env={"PATH": "/usr/bin"}, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_router_semantics(tmp_path: Path) -> None:
    assert "$.router.blocklist[0]: invalid regex" in error_for(
        tmp_path, {**MINIMAL, "router": {"blocklist": ["(bad"]}})
    assert "$.router.limits.timezone" in error_for(
        tmp_path, {**MINIMAL, "router": {"limits": {"timezone": "Mars/Olympus"}}})
    assert "$.router.personas.witty" in error_for(
        tmp_path, {**MINIMAL, "router": {"personas": {"witty": "missing.md"}}})
    assert "$.router.command_ranks.kik: not a command; use one of" in error_for(
        tmp_path, {**MINIMAL, "router": {"command_ranks": {"kik": 3}}})
    assert load_config(write(tmp_path, {**MINIMAL, "router": {"command_ranks": {"kick": 3}}}),
                       env={}).router.command_ranks == {"kick": 3}


def test_openai_fallback_needs_a_key(tmp_path: Path) -> None:
    data = {**MINIMAL, "providers": {"fallbacks": [{"provider": "openai",
                                                    "model": "gpt-4o-mini"}]}}
    assert "$.providers.fallbacks[0]" in error_for(tmp_path, data)
    assert load_config(write(tmp_path, data), env={"OPENAI_API_KEY": "sk"}).providers.fallbacks
