"""The monitoring files: Prometheus config and alert rules (promtool), Alertmanager
(amtool), Grafana dashboards (every query parses and names a metric of the catalog), and
the metric catalog's pre-initialisation."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rosey import metrics
from tests import promfiles
from tests.promfiles import ALERTS, ALERTS_TEST, DASHBOARDS, PROM_DIR, ROOT, RUNBOOK, tool

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",), "summary": ("_sum", "_count", "")}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, cwd=cwd)


def catalog_samples() -> dict[str, list[str]]:
    """Every sample name some process's registry can export → its label names."""
    labels = {m._name: list(m._labelnames) for m in metrics.catalog()}
    out: dict[str, list[str]] = {}
    families = [f for role in metrics.ROLES for f in metrics.registry_for(role).collect()]
    for family in families:
        for suffix in SUFFIXES.get(family.type, ("",)):
            out[family.name + suffix] = labels.get(family.name, [])
    return out


# ---- Prometheus and Alertmanager --------------------------------------------------------

@pytest.mark.integration
def test_promtool_check_config() -> None:
    done = run(tool("promtool"), "check", "config", str(PROM_DIR / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr
    text = (PROM_DIR / "prometheus.yml").read_text()
    for job in ("rosey_conn", "rosey_router", "rosey_events", "rosey_caller"):
        assert f"job_name: {job}" in text
    assert "file_sd_configs" in text and "callers.json" in text


@pytest.mark.integration
def test_promtool_check_rules_counts_every_alert() -> None:
    done = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    count = len(promfiles.alerts())
    assert count == 14
    assert f"SUCCESS: {count} rules found" in done.stdout  # the mini-parser saw them all


@pytest.mark.integration
def test_promtool_test_rules() -> None:
    done = run(tool("promtool"), "test", "rules", str(ALERTS_TEST))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alert_tests_cover_fire_and_no_fire_for_every_alert() -> None:
    cases: dict[str, list[bool]] = {}
    lines = ALERTS_TEST.read_text().splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"\s*alertname: (\S+)", line)
        if found:
            cases.setdefault(found.group(1), []).append(lines[i + 1].strip() != "exp_alerts: []")
    for alert in promfiles.alerts():
        fires = cases.get(alert.name, [])
        assert fires.count(True) >= 1, f"{alert.name}: no firing case"
        assert fires.count(False) >= 2, f"{alert.name}: needs below-threshold and before-for"


@pytest.mark.integration
def test_every_alert_has_a_case_that_fails_without_its_for(tmp_path: Path) -> None:
    """Remove every `for:` and the suite must fail on each alert: the cases really test it."""
    text = re.sub(r"\n\s+for: \S+", "", ALERTS.read_text())
    (tmp_path / "alerts.yml").write_text(text)
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    done = run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert done.returncode != 0
    failed = set(re.findall(r"alertname: (\w+)", done.stdout + done.stderr))
    assert failed == {a.name for a in promfiles.alerts()}


def test_every_alert_is_documented() -> None:
    anchors = {promfiles.slug(h) for h in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), re.M)}
    for alert in promfiles.alerts():
        f = alert.fields
        assert re.fullmatch(r"\d+m", f.get("for", "")), alert.name
        assert f.get("severity") in ("critical", "warning"), alert.name
        assert len(f.get("summary", "")) > 10 and len(f.get("description", "")) > 20
        url = f.get("runbook_url", "")
        assert url.startswith("docs/RUNBOOK.md#"), alert.name
        assert url.split("#")[1] in anchors, f"{alert.name}: no heading for {url}"


@pytest.mark.integration
def test_amtool_check_config() -> None:
    path = ROOT / "etc" / "alertmanager" / "alertmanager.yml"
    done = run(tool("amtool"), "check-config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "2 receivers" in done.stdout


# ---- every expression: parses, names catalog metrics, papers over nothing -------------------

@pytest.mark.integration
def test_every_expression_parses(tmp_path: Path) -> None:
    exprs = promfiles.all_expressions()
    assert len(exprs) >= 60
    rules = ["groups:", "  - name: check", "    rules:"]
    for n, (_where, expr) in enumerate(exprs):
        rules += [f"      - record: rosey:check:{n}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "exprs.yml"
    path.write_text("\n".join(rules) + "\n")
    done = run(tool("promtool"), "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_expressions_select_rosey_metrics_without_papering_over_gaps() -> None:
    for where, expr in promfiles.all_expressions():
        names = promfiles.metric_names(expr)
        assert "vector(" not in expr, where
        assert not re.search(r"\bor\b", expr), where
        if where == "alert RoseyTargetDown":  # `up`: a dead target has no rosey_* series
            assert names == {"up"} and 'job=~"rosey_.*"' in expr
            continue
        assert any(n.startswith("rosey_") for n in names), where


def test_every_named_metric_and_label_exists_in_the_catalog() -> None:
    known = catalog_samples()
    assert "rosey_router_replies_total" in known and "process_resident_memory_bytes" in known
    for where, expr in promfiles.all_expressions():
        for name in promfiles.metric_names(expr) - {"up"}:
            assert name in known, f"{where}: {name} is not in rosey.metrics"
        for name, matchers in re.findall(r"\b(rosey_[a-z0-9_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*[!=]~?", matchers):
                assert label in known[name] + ["job", "instance"], f"{where}: {name}{{{label}}}"


# ---- Grafana ------------------------------------------------------------------------------

def test_dashboards_follow_the_classic_model() -> None:
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        assert 39 <= board["schemaVersion"] <= 41
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in promfiles.panels(board)]
        assert len(ids) == len(set(ids)), path.name
        for panel in promfiles.panels(board):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
                for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                    assert window in ("$__rate_interval", "1h", "1d"), (panel["title"], window)
    assert uids == {"rosey-overview", "rosey-process", "rosey-channel"}


def test_overview_shows_the_red_of_the_mention_pipeline() -> None:
    board = json.loads((ROOT / "grafana/dashboards/rosey-overview.json").read_text())
    exprs = " ".join(t["expr"] for p in promfiles.panels(board) for t in p.get("targets", []))
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(" \
               "rosey_router_reply_latency_seconds_bucket" in exprs
        assert f"histogram_quantile({quantile}, sum by (le, model) (rate(" \
               "rosey_llm_latency_seconds_bucket" in exprs
    for name in ("rosey_router_triggers_total", 'kind="fallback"', 'outcome=~"shed',
                 "rosey_router_rate_limited_total", "rosey_llm_tokens_total[1d]",
                 "rosey_llm_cost_usd_total[1d]", "rosey_router_callers_alive",
                 "rosey_conn_connected", "rosey_event_loop_lag_seconds_bucket",
                 "process_resident_memory_bytes"):
        assert name in exprs, name


def test_channel_dashboard_shows_people_peaks_chat_and_media() -> None:
    board = json.loads((ROOT / "grafana/dashboards/rosey-channel.json").read_text())
    exprs = " ".join(t["expr"] for p in promfiles.panels(board) for t in p.get("targets", []))
    for name in ("rosey_channel_users", "rosey_channel_peak_users", "rosey_channel_connections",
                 'max_over_time(rosey_channel_users{channel=~"$channel"}[1d])', 'kind="chat"',
                 "rosey_channel_media_changes_total", "rosey_channel_playlist_items"):
        assert name in exprs, name
    notes = [n for n in board["annotations"]["list"] if "expr" in n]
    assert [n["expr"] for n in notes] == [
        "changes(rosey_channel_media_started_timestamp_seconds[$__rate_interval]) > 0"]


def test_overview_and_channel_dashboards_select_channels() -> None:
    """A channel selector (several, or All) filters every series that has a channel."""
    per_channel = {m._name for m in metrics.catalog() if m._labelnames[:1] == ("channel",)}
    assert {"rosey_router_replies", "rosey_conn_connected", "rosey_channel_users"} <= per_channel
    for name in ("rosey-overview.json", "rosey-channel.json"):
        board = json.loads((ROOT / "grafana/dashboards" / name).read_text())
        variable = next(v for v in board["templating"]["list"] if v["name"] == "channel")
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
        assert variable["definition"] == "label_values(rosey_conn_connected, channel)"
        filtered = 0
        for panel in promfiles.panels(board):
            for target in panel.get("targets", []):
                for metric, matchers in re.findall(r"\b(rosey_[a-z0-9_]+)(\{[^}]*\})?",
                                                   target["expr"]):
                    if re.sub(r"_(bucket|total|count|sum)$", "", metric) in per_channel:
                        assert 'channel=~"$channel"' in matchers, (panel["title"], metric)
                        filtered += 1
        assert filtered >= 5, name


def test_overview_has_the_endpoints_row() -> None:
    board = json.loads((ROOT / "grafana/dashboards/rosey-overview.json").read_text())
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert "Model endpoints" in rows
    exprs = " ".join(t["expr"] for p in promfiles.panels(board) for t in p.get("targets", []))
    for part in ("rosey_endpoint_in_flight", "rosey_endpoint_capacity", "rosey_endpoint_up",
                 "histogram_quantile(0.5, sum by (le, endpoint) (rate("
                 "rosey_endpoint_latency_seconds_bucket",
                 "histogram_quantile(0.95, sum by (le, endpoint) (rate("
                 "rosey_endpoint_latency_seconds_bucket",
                 "sum by (endpoint, outcome) (rate(rosey_endpoint_requests_total"):
        assert part in exprs, part


def test_process_dashboard_filters_by_process() -> None:
    board = json.loads((ROOT / "grafana/dashboards/rosey-process.json").read_text())
    variable = next(v for v in board["templating"]["list"] if v["name"] == "process")
    assert variable["definition"] == "label_values(rosey_build_info, process)"
    assert variable["allValue"] == ".*"
    filtered = [t for p in promfiles.panels(board) for t in p.get("targets", [])
                if "$process" in t["expr"]]
    assert len(filtered) >= 9


# ---- the catalog's pre-initialisation -----------------------------------------------------

def exported(process: str, setup: str = "") -> dict[str, float]:
    """/metrics of a fresh interpreter after preinit(process) (and ``setup``, e.g. conn's
    per-channel metrics), as {sample: value}."""
    code = ("import sys; from prometheus_client import generate_latest; from rosey import metrics;"
            f"registry = metrics.preinit({process!r}, ['chan'], [('gpu1', 4)]);{setup}"
            "sys.stdout.write(generate_latest(registry).decode())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=ROOT, check=True)
    out = {}
    for line in done.stdout.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.mark.integration
def test_preinit_router_exports_its_label_sets_at_zero_and_nothing_of_conn() -> None:
    got = exported("router")
    for kind in ("llm", "fallback"):
        assert got[f'rosey_router_replies_total{{channel="chan",kind="{kind}"}}'] == 0
    assert got['rosey_router_requests_total{channel="chan",outcome="shed"}'] == 0
    assert got['rosey_router_rate_limited_total{channel="chan",scope="user"}'] == 0
    assert got['rosey_router_budget_used_ratio{period="day"}'] == 0
    assert got['rosey_memory_target_bytes{process="router"}'] == 60 * 1024 * 1024
    assert got['rosey_ipc_decode_errors_total{process="router"}'] == 0
    assert got['rosey_endpoint_capacity{endpoint="gpu1"}'] == 4
    assert got['rosey_endpoint_up{endpoint="gpu1"}'] == 1
    assert got['rosey_endpoint_in_flight{endpoint="gpu1"}'] == 0
    assert got['rosey_endpoint_requests_total{endpoint="gpu1",outcome="ok"}'] == 0
    assert got['rosey_router_queue_depth{channel="chan"}'] == 0
    assert not any(k.startswith(("rosey_conn_", "rosey_llm_", "rosey_supervisor_"))
                   for k in got)


@pytest.mark.integration
def test_preinit_conn_and_caller() -> None:
    # the fatal reasons are conn's knowledge: its ChannelMetrics creates them, not the catalog
    bare = exported("conn")
    assert not any(k.startswith("rosey_conn_fatal{") for k in bare)
    conn = exported("conn", "from rosey.conn.counts import ChannelMetrics; ChannelMetrics('chan');")
    assert conn['rosey_conn_connected{channel="chan"}'] == 0
    assert conn['rosey_conn_messages_dropped_by_server_total{reason="cooldown"}'] == 0
    assert conn['rosey_conn_reconnects_total{cause="disconnect"}'] == 0
    fatal = {k for k in conn if k.startswith("rosey_conn_fatal{")}
    assert len(fatal) == 8
    assert conn['rosey_conn_fatal{channel="chan",reason="registered_name"}'] == 0
    assert not any(k.startswith(("rosey_router_", "rosey_endpoint_")) for k in conn)
    caller = exported("caller-3")
    assert caller['rosey_memory_target_bytes{process="caller-3"}'] == 80 * 1024 * 1024
    assert caller['rosey_event_loop_lag_seconds_count{process="caller-3"}'] == 0
    assert caller['rosey_ipc_decode_errors_total{process="caller"}'] == 0
    assert caller["rosey_caller_slots_busy"] == 0
    assert not any(k.startswith("rosey_conn_connected") for k in caller)
    assert "rosey_router_callers_alive" not in caller


def test_a_channel_joining_and_leaving_adds_and_drops_its_series() -> None:
    from rosey.conn.counts import ChannelMetrics  # what conn does when a channel joins

    registry = metrics.registry_for("conn")
    ChannelMetrics("joiner")
    metrics.KICKS.labels("joiner", "kick").inc()
    metrics.KICKS.labels("stayer", "kick").inc()
    assert registry.get_sample_value("rosey_conn_connected", {"channel": "joiner"}) == 0
    assert registry.get_sample_value("rosey_conn_fatal", {"channel": "joiner",
                                                          "reason": "server_ban"}) == 0
    metrics.remove_channel("joiner")
    assert registry.get_sample_value("rosey_conn_connected", {"channel": "joiner"}) is None
    assert registry.get_sample_value("rosey_conn_kicks_total",
                                     {"channel": "joiner", "kind": "kick"}) is None
    assert registry.get_sample_value("rosey_conn_kicks_total",
                                     {"channel": "stayer", "kind": "kick"}) == 1
    metrics.remove_channel("stayer")
