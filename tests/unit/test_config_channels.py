"""Config for many channels and many model hosts: channel_configs and provider_endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rosey.config import ConfigError, channel_configs, collect_errors, load_config
from rosey.config_schema import Config, Endpoint

BASE = {"domain": "http://127.0.0.1:8080", "user": ["roseybot", "pw"]}


def load(tmp_path: Path, data: dict[str, object],
         env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return load_config(path, env=env or {})


def error_for(tmp_path: Path, data: dict[str, object], env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data, env)
    assert "\n" not in str(info.value)
    return str(info.value)


def all_errors(tmp_path: Path, data: dict[str, object]) -> list[str]:
    return collect_errors(data, base_dir=tmp_path, env={})


def test_single_channel_is_a_list_of_one_that_is_the_config_itself(tmp_path: Path) -> None:
    cfg = load(tmp_path, {**BASE, "channel": "movies"})
    assert channel_configs(cfg) == [cfg] and channel_configs(cfg)[0] is cfg


def test_channels_deep_merge_in_order(tmp_path: Path) -> None:
    (tmp_path / "anime.md").write_text("You love anime.")
    cfg = load(tmp_path, {**BASE, "llm": {"llm_cooldown": 20, "llm_triggers": ["hey"]},
                          "router": {"limits": {"daily_quota": 10, "user_burst": 3}},
                          "channels": [
        {"channel": "movies"},
        {"channel": "anime", "conn": {"channel_password": "s3cret"},
         "llm": {"system_prompt_file": "anime.md", "llm_triggers": ["@rosey"], "llm_cooldown": 5},
         "router": {"limits": {"daily_quota": 50}}}]})
    assert cfg.channel == "movies"  # the top level names the first channel
    movies, anime = channel_configs(cfg)
    assert (movies.channel, anime.channel) == ("movies", "anime")
    assert movies.llm.llm_cooldown == 20 and movies.llm.llm_triggers == ["hey"]
    assert movies.conn.channel_password == "" and movies.router.limits.daily_quota == 10
    assert anime.llm.llm_cooldown == 5 and anime.llm.llm_triggers == ["@rosey"]
    assert anime.llm.system_prompt_file == str(tmp_path / "anime.md")  # against the config dir
    assert anime.conn.channel_password == "s3cret"
    # router.limits merged key by key: the override's quota, the top level's burst
    assert (anime.router.limits.daily_quota, anime.router.limits.user_burst) == (50, 3)
    assert channel_configs(anime) == [anime] and anime.channels == []
    # computed once: the same objects until the config changes
    assert channel_configs(cfg)[1] is anime
    cfg.llm.response_timeout = 7.0
    assert channel_configs(cfg)[1] is not anime
    assert channel_configs(cfg)[1].llm.response_timeout == 7.0



def test_a_channels_inline_prompt_beats_the_file_it_would_inherit(tmp_path: Path) -> None:
    # The file wins over the inline prompt, so inheriting the top level's file would
    # silently drop the channel's own persona (while check-config says it overrides it).
    (tmp_path / "prompt.md").write_text("TOP-LEVEL PERSONA")
    (tmp_path / "music.md").write_text("MUSIC PERSONA")
    cfg = load(tmp_path, {**BASE, "llm": {"system_prompt_file": "prompt.md"}, "channels": [
        {"channel": "movies"},
        {"channel": "anime", "llm": {"system_prompt": "ANIME PERSONA"}},
        {"channel": "music",
         "llm": {"system_prompt": "unused", "system_prompt_file": "music.md"}}]})
    movies, anime, music = channel_configs(cfg)
    assert movies.llm.system_prompt_file == str(tmp_path / "prompt.md")
    assert (anime.llm.system_prompt, anime.llm.system_prompt_file) == ("ANIME PERSONA", "")
    assert music.llm.system_prompt_file == str(tmp_path / "music.md")

def test_unknown_key_in_a_channel_override_names_its_path(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "a"}, {"channel": "b", "llm": {"llm_cooldwn": 5}}]})
    assert "$.channels[1].llm.llm_cooldwn: unknown key; did you mean 'llm_cooldown'?" in message
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "a", "router": {"limits": {"daily_qouta": 5}}}]})
    assert "$.channels[0].router.limits.daily_qouta" in message and "daily_quota" in message
    message = error_for(tmp_path, {**BASE, "channels": [{"channel": "a", "sound": {}}]})
    assert "$.channels[0].sound: unknown key" in message


def test_wrong_type_in_a_channel_override(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "a", "llm": {"llm_cooldown": "5"}}]})
    assert "$.channels[0].llm.llm_cooldown: expected a number, got a string" in message


def test_channel_semantics_are_named_at_the_entry(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "a"}, {"channel": "b"}, {"channel": "c",
                                            "llm": {"system_prompt_file": "nope.md"}}]})
    assert "$.channels[2].llm.system_prompt_file:" in message and "does not exist" in message
    assert "$.channels[1].channel: expected 1-30" in error_for(
        tmp_path, {**BASE, "channels": [{"channel": "ok"}, {"channel": "bad name!"}]})
    assert "$.channels[0].llm.llm_cooldown: expected a number >= 0" in error_for(
        tmp_path, {**BASE, "channels": [{"channel": "a", "llm": {"llm_cooldown": -1}}]})


def test_every_problem_at_once_each_reported_once(tmp_path: Path) -> None:
    errors = all_errors(tmp_path, {**BASE, "llm": {"llm_cooldown": -1}, "channels": [
        {"channel": "a", "llm": {"llm_cooldwn": 5}},
        {"channel": "b", "llm": {"system_prompt_file": "nope.md"}}]})
    assert len(errors) == 3, errors
    assert any("$.llm.llm_cooldown" in e for e in errors)  # once, at the top level
    assert any("$.channels[0].llm.llm_cooldwn: unknown key" in e for e in errors)
    assert any("$.channels[1].llm.system_prompt_file" in e for e in errors)


def test_channel_and_channels_together_refused(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**BASE, "channel": "a", "channels": [{"channel": "b"}]})
    assert "$.channels: given together with $.channel; keep one" in message


def test_duplicate_channel_refused(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "movies"}, {"channel": "anime"}, {"channel": "Movies"}]})
    assert "$.channels[2].channel: 'Movies' is also $.channels[0]" in message


def test_no_channel_at_all(tmp_path: Path) -> None:
    assert "$.channel: missing" in error_for(tmp_path, {**BASE, "channels": []})


def test_model_hosts_are_not_per_channel(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "a", "llm": {"ollama_host": "http://x:1"}}]})
    assert "$.channels[0].llm.ollama_host: not per channel" in message
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "a"}, {"channel": "b", "llm": {"openai_api_key": "sk-x"}}]})
    assert "$.channels[1].llm.openai_api_key: not per channel; set OPENAI_API_KEY" in message
    message = error_for(tmp_path, {**BASE, "channels": [
        {"channel": "a", "router": {"queue_max": 8}}]})
    assert "$.channels[0].router.queue_max: not per channel; set router.queue_max" in message


def test_legacy_ollama_host_is_a_list_of_one(tmp_path: Path) -> None:
    cfg = load(tmp_path, {**BASE, "channel": "a", "callers": {"max": 4, "slots": 2},
                          "llm": {"ollama_host": "http://gpu1:11434"}})
    from rosey.config import provider_endpoints
    assert provider_endpoints(cfg, "ollama") == [
        Endpoint(name="gpu1-11434", url="http://gpu1:11434", capacity=8)]
    cfg = load(tmp_path, {**BASE, "channel": "a"}, env={"OLLAMA_HOST": "10.0.0.5:11434"})
    assert provider_endpoints(cfg, "ollama")[0].url == "http://10.0.0.5:11434"
    assert provider_endpoints(cfg, "ollama")[0].name == "10-0-0-5-11434"
    assert provider_endpoints(cfg, "openai")[0].url == "https://api.openai.com/v1"


def test_endpoints_named_and_derived(tmp_path: Path) -> None:
    from rosey.config import provider_endpoints
    cfg = load(tmp_path, {**BASE, "channel": "a", "providers": {"ollama": {"endpoints": [
        {"url": "http://gpu1:11434", "capacity": 4, "name": "big"},
        {"url": "http://GPU2.lan:11434", "capacity": 2}]},
        "openai": {"endpoints": [{"url": "https://vllm:8000/v1", "capacity": 16}]}}})
    assert provider_endpoints(cfg, "ollama") == [
        Endpoint(name="big", url="http://gpu1:11434", capacity=4),
        Endpoint(name="gpu2-lan-11434", url="http://GPU2.lan:11434", capacity=2)]
    assert provider_endpoints(cfg, "openai") == [
        Endpoint(name="vllm-8000", url="https://vllm:8000/v1", capacity=16)]
    with pytest.raises(AttributeError):
        provider_endpoints(cfg, "ollama")[0].capacity = 9  # type: ignore[misc]


@pytest.mark.parametrize(("endpoint", "path", "words"), [
    ({"url": "gpu1:11434", "capacity": 4}, "[0].url", "expected a URL"),
    ({"url": "http://gpu1:11434", "capacity": 0}, "[0].capacity", "expected 1 or more"),
    ({"url": "http://gpu1:11434", "capacity": 1, "name": "GPU 1"}, "[0].name", "a-z, 0-9"),
    ({"url": "http://gpu1:11434"}, "[0]", "missing key 'capacity'"),
    ({"url": "http://gpu1:11434", "capacity": 1, "weight": 2}, "[0].weight", "unknown"),
])
def test_bad_endpoint(tmp_path: Path, endpoint: dict[str, object], path: str,
                      words: str) -> None:
    message = error_for(tmp_path, {**BASE, "channel": "a",
                                   "providers": {"ollama": {"endpoints": [endpoint]}}})
    assert f"$.providers.ollama.endpoints{path}" in message and words in message, message


def test_duplicate_endpoint_names_refused(tmp_path: Path) -> None:
    message = error_for(tmp_path, {**BASE, "channel": "a", "providers": {"ollama": {"endpoints": [
        {"url": "http://gpu1:11434", "capacity": 1},
        {"url": "http://gpu1:11434/", "capacity": 1}]}}})
    assert "$.providers.ollama.endpoints[1].name: 'gpu1-11434' is also" in message
    assert "distinct \"name\"" in message


def test_legacy_key_and_endpoints_together_refused(tmp_path: Path) -> None:
    endpoints = {"endpoints": [{"url": "http://gpu1:11434", "capacity": 1}]}
    message = error_for(tmp_path, {**BASE, "channel": "a", "llm": {"ollama_host": "http://x:1"},
                                   "providers": {"ollama": endpoints}})
    assert "$.providers.ollama.endpoints: given together with $.llm.ollama_host" in message
    message = error_for(tmp_path, {**BASE, "channel": "a", "providers": {"ollama": endpoints}},
                        env={"OLLAMA_HOST": "x:1"})
    assert "OLLAMA_HOST environment variable" in message and "remove" in message
    message = error_for(tmp_path, {**BASE, "channel": "a", "providers": {"openai": {
        "base_url": "http://x/v1", **endpoints}}})
    assert "given together with $.providers.openai.base_url" in message
    # each alone is fine
    assert load(tmp_path, {**BASE, "channel": "a", "providers": {"ollama": endpoints}})


def test_openai_endpoints_need_no_key(tmp_path: Path) -> None:
    cfg = load(tmp_path, {**BASE, "channel": "a", "llm": {"provider": "openai"},
                          "providers": {"openai": {"endpoints": [
                              {"url": "http://vllm:8000/v1", "capacity": 2}]}}})
    assert cfg.llm.provider == "openai"
    assert "openai_api_key" in error_for(tmp_path, {**BASE, "channel": "a",
                                                    "llm": {"provider": "openai"}})


def test_channels_example_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "etc" / "config.channels.example.json", env={})
    names = [c.channel for c in channel_configs(cfg)]
    assert len(names) == 3 and cfg.channel == names[0]
    from rosey.config import provider_endpoints
    assert len(provider_endpoints(cfg, "ollama")) == 2


@pytest.mark.integration  # runs `rosey check-config` in a subprocess
def test_config_doc_shows_the_channels_example_and_what_check_config_prints(
        tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "CONFIG.md").read_text()
    section = doc.split("**Three channels on two Ollama boxes**", 1)[1]
    shown = section.split("```json\n", 1)[1].split("```", 1)[0]
    example = root / "etc" / "config.channels.example.json"
    assert json.loads(shown) == json.loads(example.read_text())
    printed = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    (tmp_path / "prompt.example.md").write_text("You are {bot_name}.")
    path = tmp_path / "config.json"
    path.write_text(example.read_text())
    path.chmod(0o600)
    done = subprocess.run([sys.executable, "-m", "rosey.cli.main", "check-config", str(path)],
                          capture_output=True, text=True, env={"PATH": "/usr/bin"},
                          cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    got = done.stdout.splitlines()
    assert got[0].split(": OK", 1)[1] == printed[0].split(": OK", 1)[1]
    assert got[1:] == printed[1:]


def test_typos_in_entries_get_did_you_mean(tmp_path: Path) -> None:
    assert "$.channels[1].chanel: unknown key; did you mean 'channel'?" in error_for(
        tmp_path, {**BASE, "channels": [{"channel": "a"}, {"chanel": "b"}]})
    assert "$.providers.ollama.endpoints[0].capacty: unknown key; did you mean 'capacity'?" \
        in error_for(tmp_path, {**BASE, "channel": "a", "providers": {"ollama": {"endpoints": [
            {"url": "http://gpu1:11434", "capacty": 2}]}}})
    # every problem at once, each once: the typo (not also the name it leaves missing,
    # nor a missing top-level channel)
    errors = all_errors(tmp_path, {**BASE, "channels": [
        {"channel": "a", "llm": {"llm_cooldown": 1}}, {"chanel": "b"}]})
    assert len(errors) == 1 and "$.channels[1].chanel: unknown key" in errors[0], errors
    errors = all_errors(tmp_path, {**BASE, "channel": "a", "providers": {"fallbacks": [
        {"provider": "gtp", "model": "m"}]}})
    assert errors == ["config.json: $.providers.fallbacks[0].provider: invalid value 'gtp'; "
                      "expected one of openai, ollama"]
    assert "$.channels[0].llm.provider: invalid value 'gpt'; expected one of openai, ollama" \
        in error_for(tmp_path, {**BASE, "channels": [{"channel": "a",
                                                      "llm": {"provider": "gpt"}}]})
