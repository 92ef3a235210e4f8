"""One exception root: every exception class Rosey defines derives from RoseyError."""

from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path

from rosey.errors import ConfigError, RoseyError

ROOT = Path(__file__).resolve().parents[2]
BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def defined_exceptions() -> list[tuple[str, str]]:
    """(module, class) of every class in rosey/ whose bases name a built-in exception or
    a class already found (found by reading the source, so no provider SDK is imported)."""
    found: list[tuple[str, str]] = []
    names = set(BUILTIN_ERRORS) | {"RoseyError"}
    for path in sorted((ROOT / "rosey").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else
                         b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases}
                if bases & names:
                    found.append((module, node.name))
                    names.add(node.name)
    return found


def test_every_rosey_exception_derives_from_rosey_error() -> None:
    found = defined_exceptions()
    assert ("rosey.config", "ConfigError") not in found  # it lives in rosey.errors now
    assert len(found) >= 10, found  # the ten roots there were, and what derives from them
    for module, name in found:
        if module == "rosey.errors" and name == "RoseyError":
            continue
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, RoseyError), f"{module}.{name} does not derive from RoseyError"


def test_config_error_is_still_importable_from_config() -> None:
    from rosey.config import ConfigError as FromConfig

    assert FromConfig is ConfigError and issubclass(ConfigError, RoseyError)
