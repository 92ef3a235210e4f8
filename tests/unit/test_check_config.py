"""`rosey check-config`: every error at once, the world-readable secret warning, and the
persona example as ``llm.system_prompt_file``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rosey.config import check_config_file, collect_errors
from rosey.router.prompts import load_system_prompt, render_system_prompt

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"domain": "http://127.0.0.1:8080", "channel": "testchan", "user": ["roseybot", ""]}
CLEAN_ENV = {"PATH": "/usr/bin"}


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rosey.cli.main", "check-config", str(path)],
                          capture_output=True, text=True, env=CLEAN_ENV, cwd=ROOT, timeout=60)


def write(tmp_path: Path, data: object, mode: int = 0o600) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    os.chmod(path, mode)
    return path


BROKEN = {
    "domain": "cytu.be", "channel": "bad name", "user": ["roseybot", ""],
    "llm": {"provider": "gpt", "llm_cooldwn": 5, "response_timeout": "30",
            "llm_triggers": ["re:(unclosed"]},
    "callers": {"count": 20},
    "router": {"limits": {"timezone": "Mars/Olympus"}},
    "providers": {"fallbacks": [{"provider": "openai"}]},
}


@pytest.mark.integration
def test_every_error_in_one_run(tmp_path: Path) -> None:
    done = check(write(tmp_path, BROKEN))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    source = str(tmp_path / "config.json")
    expected = [
        "$.domain: expected a URL starting with http:// or https://, e.g. https://cytu.be",
        "$.channel: expected 1-30 characters of a-z, A-Z, 0-9, - or _",
        "$.llm.provider: invalid value 'gpt'; expected one of openai, ollama",
        "$.llm.llm_cooldwn: unknown key; did you mean 'llm_cooldown'?",
        "$.llm.response_timeout: expected a number, got a string",
        "$.llm.llm_triggers[0]: invalid regex",
        "$.callers.count: expected 1..callers.max (8)",
        "$.router.limits.timezone: unknown time zone",
        "$.providers.fallbacks[0]: missing key 'model'; add it",
    ]
    for want in expected:
        assert sum(line.startswith(f"rosey: {source}: {want}") for line in lines) == 1, want
    assert lines[-1] == (f"rosey: {len(expected)} problems; fix them all, then run "
                         "check-config again")
    assert len(lines) == len(expected) + 1
    # a wrongly typed key is reported once, not again by the checks that follow it
    assert sum("response_timeout" in line for line in lines) == 1


def test_collect_errors_is_empty_for_a_valid_config_and_matches_load_order(
        tmp_path: Path) -> None:
    assert collect_errors(MINIMAL, base_dir=tmp_path, env={}) == []
    errors = collect_errors({**MINIMAL, "user": []}, base_dir=tmp_path, env={}, source="c")
    assert errors == ['c: $.user: expected ["BotName", "password"] (password may be "" '
                      'for a guest)']  # and no IndexError from the user[0] check after it
    assert collect_errors([1], base_dir=tmp_path, env={}, source="c") == [
        "c: $: expected a JSON object at the top level"]


@pytest.mark.integration
def test_world_readable_file_with_secrets_warns_but_passes(tmp_path: Path) -> None:
    secret = {**MINIMAL, "user": ["roseybot", "hunter2"],
              "llm": {"provider": "openai", "openai_api_key": "sk-test"}}
    path = write(tmp_path, secret, mode=0o644)
    done = check(path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"rosey: {path}: warning: readable by every user (mode 0644) and holds a password and "
        f"an API key; run `chmod 600 {path}`, or move secrets to the environment "
        "(ROSEY_PASSWORD, OPENAI_API_KEY, ROSEY_CHANNEL_PASSWORD; under systemd in "
        "/etc/rosey/rosey.env, mode 600)\n")
    assert "hunter2" not in done.stderr and "sk-test" not in done.stderr
    assert ": OK (" in done.stdout
    # the same file, private: no warning; world-readable without secrets: no warning either
    os.chmod(path, 0o600)
    done = check(path)
    assert done.returncode == 0 and done.stderr == ""
    done = check(write(tmp_path, MINIMAL, mode=0o644))
    assert done.returncode == 0 and done.stderr == ""
    report = check_config_file(write(tmp_path, secret, mode=0o604), env={})
    assert report.errors == [] and len(report.warnings) == 1 and "mode 0604" in report.warnings[0]


@pytest.mark.integration
def test_prompt_example_loads_as_system_prompt_file(tmp_path: Path) -> None:
    shutil.copy(ROOT / "etc" / "prompt.example.md", tmp_path / "prompt.md")
    path = write(tmp_path, {**MINIMAL, "llm": {"system_prompt_file": "prompt.md"}})
    done = check(path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    template = load_system_prompt("", str(tmp_path / "prompt.md"), "default")
    for heading in ("# Identity", "# Context", "# Capabilities", "# Limitations", "# Examples"):
        assert heading in template
    prompt = render_system_prompt(template, bot_name="Rosey", channel="movienight", user="alice",
                                  now_playing="Alien (1979)", time="2025-01-01 20:00 UTC")
    assert "You are Rosey, a regular in the CyTube channel movienight" in prompt
    assert "Now playing: Alien (1979)." in prompt and "Time: 2025-01-01 20:00 UTC." in prompt
    assert "{" not in prompt and "}" not in prompt  # every variable filled, no stray braces
    # a missing prompt file is one of the errors check-config reports
    (tmp_path / "prompt.md").unlink()
    done = check(path)
    assert done.returncode == 2 and "$.llm.system_prompt_file" in done.stderr
