"""``rosey init-config``: write the example config (and persona prompt) to start from.

The examples ship inside the package (``rosey.examples``, the repository's etc/), so this
works from a plain ``pip install`` as well as from a checkout."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from rosey.errors import RoseyError


class Exists(RoseyError):
    """The target is already there: nothing is overwritten."""


def write_examples(config: Path, prompt: Path | None = None) -> None:
    """Write the example config to ``config`` and, with ``prompt``, the example persona
    prompt there, named (relative to the config's folder) in llm.system_prompt_file.
    Files are created with the process umask (0600 by default: a config may hold keys)."""
    for path in (config, prompt):
        if path is not None and path.exists():
            raise Exists(str(path))
    examples = resources.files("rosey.examples")
    text = examples.joinpath("config.example.json").read_text(encoding="utf-8")
    if prompt is not None:
        relative = os.path.relpath(prompt.resolve(), config.resolve().parent)
        before = '"system_prompt_file": ""'
        if text.count(before) != 1:
            raise RuntimeError("the example config lost its llm.system_prompt_file")
        text = text.replace(before, f'"system_prompt_file": {json.dumps(relative)}')
        prompt.parent.mkdir(parents=True, exist_ok=True)
        prompt.write_text(examples.joinpath("prompt.example.md").read_text(encoding="utf-8"),
                          encoding="utf-8")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
