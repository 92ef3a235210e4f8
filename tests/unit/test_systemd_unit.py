"""etc/systemd/rosey.service: parsed like systemd reads it (INI, configparser-style).

The parsing tests are the check on every machine. ``systemd-analyze verify`` runs in
addition only where the tool exists (it is not installed everywhere, e.g. in minimal
containers); its test is skipped elsewhere, and the parsing tests still cover the unit.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rosey.cli.launch import render_supervisord_conf
from rosey.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "etc" / "systemd" / "rosey.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",),
                                       comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_runs_rosey_run_as_a_dedicated_non_root_user() -> None:
    service = unit()["Service"]
    assert service["User"] == "rosey" and service["Group"] == "rosey"
    assert service["User"] not in ("root", "0")
    assert service["ExecStart"] == "/opt/rosey/.venv/bin/rosey --config /etc/rosey/config.json run"
    assert service["ExecStartPre"].endswith("check-config")
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a config error is not retried
    assert service["EnvironmentFile"] == "-/etc/rosey/rosey.env"
    assert "ROSEY_CONFIG=/etc/rosey/config.json" in service["Environment"].split()
    assert service["StandardOutput"] == "journal" and service["StandardError"] == "journal"
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_hardening_keys() -> None:
    service = unit()["Service"]
    expected = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                "ProtectHome": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
                "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
                "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "UMask": "0077",
                "CapabilityBoundingSet": "", "RestrictAddressFamilies":
                "AF_UNIX AF_INET AF_INET6"}
    assert {key: service.get(key) for key in expected} == expected
    # Writable: exactly the data dir and the run dir, which systemd creates for the user.
    assert service["ReadWritePaths"].split() == ["/var/lib/rosey", "/run/rosey"]
    assert service["StateDirectory"] == "rosey" and service["RuntimeDirectory"] == "rosey"


def test_stop_drains_within_a_bounded_time() -> None:
    """SIGTERM only to `rosey run` (supervisord then stops callers, conn and router in
    order), and TimeoutStopSec covers their stopwaitsecs with the default config."""
    service = unit()["Service"]
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    timeout = int(service["TimeoutStopSec"])
    cfg = parse_config({"channel": "c", "user": ["bot"]}, base_dir=Path("/tmp"), env={})
    conf = render_supervisord_conf(cfg, Path("/etc/rosey/config.json"), log_to_files=False)
    waits = {name: int(wait) for name, wait in re.findall(
        r"^\[program:(\w+)\].*?^stopwaitsecs=(\d+)", conf, re.MULTILINE | re.DOTALL)}
    assert waits == {"router": 10, "conn": 10, "caller": int(cfg.llm.response_timeout) + 5}
    assert sum(waits.values()) < timeout <= 120


@pytest.mark.integration
def test_install_service_target_writes_the_dirs_the_unit_may_write() -> None:
    done = subprocess.run(["make", "-n", "-W", ".venv/.installed", "install-service"],
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    for step in ("useradd --system --user-group", "install -d -m 0750 -o root -g rosey "
                 "/etc/rosey", "/etc/systemd/system/rosey.service", "systemctl daemon-reload",
                 "systemctl enable rosey", "chmod 0640 /etc/rosey/config.json"):
        assert step in script, step
    assert 'run_dir="/run/rosey", data_dir="/var/lib/rosey"' in script
    assert "install -m 0600 -o root -g root /dev/null /etc/rosey/rosey.env" in script


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed; the parsing tests above cover the unit")
@pytest.mark.integration
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at this checkout's venv, as
    # `make install-service` does; it exits 0 even for unknown keys, so stderr must be empty.
    copy = tmp_path / "rosey.service"
    copy.write_text(UNIT.read_text().replace("/opt/rosey", str(ROOT)))
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
