"""``rosey init-config``: the example config (valid as written), the persona prompt it
names, and never an overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rosey.cli.init_config import Exists, write_examples
from rosey.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_writes_the_examples_and_never_overwrites(tmp_path: Path) -> None:
    config, prompt = tmp_path / "bot" / "config.json", tmp_path / "prompts" / "rosey.md"
    write_examples(config, prompt)
    assert json.loads(config.read_text())["llm"]["system_prompt_file"] == "../prompts/rosey.md"
    assert prompt.read_text() == (ROOT / "etc" / "prompt.example.md").read_text()
    cfg = load_config(config, env={})
    assert cfg.llm.system_prompt_file == str(prompt.resolve())
    config.write_text("{}")
    with pytest.raises(Exists, match=r"config\.json"):
        write_examples(config)
    assert config.read_text() == "{}"
    plain = tmp_path / "plain.json"
    write_examples(plain)
    assert plain.read_text() == (ROOT / "etc" / "config.example.json").read_text()
