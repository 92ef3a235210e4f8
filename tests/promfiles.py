"""Read the shipped monitoring files (etc/prometheus, grafana) for the tests.

The venv has no YAML library, so ``alerts.yml`` is read by a small parser of the subset
it is written in (one ``- alert:`` per rule, scalar or ``|`` block values); the tests
cross-check it against promtool's and Prometheus's own count of the rules.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROM_DIR = ROOT / "etc" / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
# What Grafana would put in place of its variables when querying (test values).
GRAFANA_VARS = {"$__rate_interval": "1m", "$process": ".*", "$channel": ".*",
                "${datasource}": ""}


def tool(name: str) -> str:
    """Path of a Prometheus tool; a missing one fails the test (`make test` installs them)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not installed (make test-tools, or apt-get install "
                    "--no-install-recommends prometheus prometheus-alertmanager)")
    return path


@dataclass
class Alert:
    name: str
    fields: dict[str, str]

    @property
    def expr(self) -> str:
        return self.fields["expr"].strip()


def parse_alerts(text: str) -> list[Alert]:
    alerts: list[Alert] = []
    block: str | None = None
    block_indent = 0
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if block is not None:
            if not line.strip() or indent > block_indent:
                alerts[-1].fields[block] += line.strip() + "\n"
                continue
            block = None
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        start = re.match(r"- alert: (\S+)$", stripped)
        if start:
            alerts.append(Alert(start.group(1), {}))
            continue
        field = re.match(r"([a-z_]+): ?(.*)$", stripped)
        if alerts and field and field.group(1) not in ("labels", "annotations", "rules"):
            key, value = field.groups()
            if value == "|":
                block, block_indent = key, indent
                alerts[-1].fields[key] = ""
            else:
                alerts[-1].fields[key] = value.strip().strip('"')
    return alerts


def alerts() -> list[Alert]:
    return parse_alerts(ALERTS.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return out


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr as written) for every panel target."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in panels(board):
            for target in panel.get("targets", []):
                out.append((board["uid"], panel["title"], target["expr"]))
        for note in board.get("annotations", {}).get("list", []):
            if "expr" in note:  # Prometheus annotation queries count as panels
                out.append((board["uid"], f"annotation {note['name']}", note["expr"]))
    return out


def substitute(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def all_expressions() -> list[tuple[str, str]]:
    """(where, PromQL ready to run) for every panel and every alert."""
    out = [(f"{uid}: {title}", substitute(expr)) for uid, title, expr in dashboard_queries()]
    out += [(f"alert {a.name}", a.expr) for a in alerts()]
    return out


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (rosey_*, process_*, and up)."""
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values are not metric names
    names = set(re.findall(r"\b((?:rosey|process)_[a-z0-9_]+)", expr))
    if re.search(r"\bup\{", expr):
        names.add("up")
    return names


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")
