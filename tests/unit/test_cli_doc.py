"""docs/CLI.md stays true to rosey/cli/main.py: every command and option is documented, every
exit code is one name from rosey/cli/exit_codes.py, listed once, and each command's section
names every code its function can return.  Also: every option has --help text, and
``$ROSEY_CONFIG`` stands in for ``--config``."""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rosey.cli import exit_codes, launch
from rosey.cli import main as cli
from rosey.cli import stats as rosey_stats
from rosey.cli import status as rosey_status

# Commands that hand their exit code to code elsewhere (run: execs supervisord, or relays).
DELEGATES: dict[str, object] = {"status": rosey_status, "stats": rosey_stats,
                                "run": launch.run_relayed}

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "CLI.md").read_text()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def sections() -> dict[str, str]:
    """``## rosey NAME`` → its text."""
    parts = re.split(r"^## rosey ([\w-]+)\n", DOC, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def visible_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS]


def codes_returned(function: object) -> set[str]:
    """The ``exit_codes.NAME``s a command function uses (and CONFIG if it loads the config)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
             and isinstance(node.value, ast.Name) and node.value.id == "exit_codes"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
            raise AssertionError(f"{function.__name__} returns the bare number "  # type: ignore[attr-defined]
                                 f"{node.value.value!r}; use a name from rosey.cli.exit_codes")
    loads = any(isinstance(node, ast.Name) and node.id == "_load" for node in ast.walk(tree))
    return names | ({"CONFIG"} if loads else set())


def test_every_command_has_a_section_and_every_option_is_documented() -> None:
    commands, documented = subcommands(), sections()
    assert set(commands) == set(documented)
    for name, parser in commands.items():
        for action in visible_actions(parser):
            assert action.help, f"rosey {name} {action.dest}: no --help text"
            metavar = action.metavar if isinstance(action.metavar, str) else None
            shown = action.option_strings or [metavar or action.dest.upper()]
            assert any(f"`{flag}" in documented[name] for flag in shown), \
                f"docs/CLI.md, rosey {name}: {shown[0]} is not documented"
    for action in visible_actions(cli.build_parser()):
        if action.option_strings:
            assert action.help and action.option_strings[0] in DOC.split("## Exit codes")[0]


def test_exit_codes_are_listed_once_with_their_numbers() -> None:
    table = dict((name, int(code)) for code, name in
                 re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", DOC, re.MULTILINE))
    assert table == exit_codes.ALL
    assert len(set(exit_codes.ALL.values())) == len(exit_codes.ALL), "two names, one number"
    assert exit_codes.CONFIG == 2  # settled: bad config exits 2 (and so does argparse)


def test_each_section_names_every_code_its_command_returns() -> None:
    documented = sections()
    for name, parser in subcommands().items():
        returned = codes_returned(parser.get_default("func"))
        if name in DELEGATES:  # the command hands its verdict to a module of its own
            tree = ast.parse(textwrap.dedent(inspect.getsource(DELEGATES[name])))  # type: ignore[arg-type]
            returned |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                         and isinstance(node.value, ast.Name) and node.value.id == "exit_codes"}
        assert "OK" in returned, f"rosey {name} never exits OK?"
        text = documented[name].split("Exit codes:")[-1]
        named = set(re.findall(r"`([A-Z_]+)`", text))
        assert returned <= named, f"docs/CLI.md, rosey {name}: also exits {returned - named}"
        assert named <= set(exit_codes.ALL), f"rosey {name}: unknown {named - set(exit_codes.ALL)}"


@pytest.mark.integration
def test_rosey_config_stands_in_for_the_option(tmp_path: Path) -> None:
    """`make run` passes no --config when ROSEY_CONFIG is set: rosey itself reads it."""
    cfg = tmp_path / "elsewhere" / "bot.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"channel": "envchan", "user": ["rosey", ""]}))
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "config.json").write_text(json.dumps({"channel": "wrong", "user": ["x", ""]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}

    def rosey(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rosey.cli.main", *args], capture_output=True,
                              text=True, cwd=work, env={**env, **extra}, timeout=60)

    checked = rosey("check-config", ROSEY_CONFIG=str(cfg))
    assert checked.returncode == exit_codes.OK, checked.stderr
    assert checked.stdout.startswith(f"{cfg}: OK (channel envchan")
    ctl = rosey("ctl", "status", ROSEY_CONFIG=str(cfg))  # at once, not after --timeout
    assert ctl.returncode == exit_codes.NOT_RUNNING and "rosey: not running" in ctl.stderr
    status = rosey("status", ROSEY_CONFIG=str(cfg))
    assert status.returncode == exit_codes.NOT_RUNNING
    assert status.stderr == f"rosey: not running (no supervisord answers in " \
        f"{cfg.parent / 'run'}); start it with `rosey run`\n"
    # Without it, ./config.json; with --config, that file wins over the variable.
    plain = rosey("check-config")
    assert plain.returncode == exit_codes.OK and "(channel wrong" in plain.stdout
    chosen = rosey("--config", str(work / "config.json"), "check-config",
                   ROSEY_CONFIG=str(cfg))
    assert chosen.returncode == exit_codes.OK and "(channel wrong" in chosen.stdout
