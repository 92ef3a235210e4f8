"""The supervisord event listener, fed a scripted event stream (as supervisord writes it)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from rosey import metrics as catalog
from rosey.events import exposition
from rosey.events import listener as se
from rosey.events.exposition import EventMetrics


def event(name: str, payload: str, serial: int = 1) -> bytes:
    body = payload.encode()
    header = (f"ver:3.0 server:supervisor serial:{serial} pool:events poolserial:{serial} "
              f"eventname:{name} len:{len(body)}\n")
    return header.encode() + body


def state(name: str, process: str, group: str, extra: str = "") -> bytes:
    return event(f"PROCESS_STATE_{name}",
                 f"processname:{process} groupname:{group} from_state:X {extra}".strip())


def value(listener: se.Listener, name: str, **labels: str) -> float | None:
    family = next(f for f in listener.metrics.families() if f.name == name)
    return family.get(*(labels[k] for k in family.labels))


def run(stream: bytes, listener: se.Listener) -> tuple[int, str]:
    out = io.StringIO()
    handled = listener.run(io.BytesIO(stream), out)
    return handled, out.getvalue()


def test_protocol_ready_read_exactly_len_and_ok() -> None:
    stream = state("STARTING", "p1", "g1", "tries:0") + state("RUNNING", "p1", "g1", "pid:42")
    listener = se.Listener()
    handled, out = run(stream, listener)
    assert handled == 2
    # READY before each event, RESULT 2\nOK after each, and READY again before EOF.
    assert out == "READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"
    assert value(listener, "rosey_supervisor_process_state", program="g1", process="p1") == 20
    assert value(listener, "rosey_supervisor_process_starts_total", program="g1", process="p1") == 1
    assert value(listener, "rosey_supervisor_process_exits_total", program="g1", process="p1",
                 expected="false") == 0  # pre-initialised on first sight


def test_exits_and_backoff_are_counted_by_expectation() -> None:
    stream = b"".join([
        state("STARTING", "p2", "g2", "tries:0"), state("RUNNING", "p2", "g2", "pid:1"),
        state("EXITED", "p2", "g2", "expected:0 pid:1"),
        state("STARTING", "p2", "g2", "tries:0"), state("BACKOFF", "p2", "g2", "tries:1"),
        state("STARTING", "p2", "g2", "tries:1"), state("RUNNING", "p2", "g2", "pid:2"),
        state("EXITED", "p2", "g2", "expected:1 pid:2"),
        state("STARTING", "p2", "g2", "tries:0"), state("BACKOFF", "p2", "g2", "tries:1"),
        state("FATAL", "p2", "g2"),
    ])
    listener = se.Listener()
    handled, _ = run(stream, listener)
    assert handled == 11
    assert value(listener, "rosey_supervisor_process_exits_total", program="g2", process="p2",
                 expected="false") == 3  # one unexpected EXITED + two BACKOFF
    assert value(listener, "rosey_supervisor_process_exits_total", program="g2", process="p2",
                 expected="true") == 1
    assert value(listener, "rosey_supervisor_process_starts_total", program="g2", process="p2") == 4
    assert value(listener, "rosey_supervisor_process_state", program="g2", process="p2") == 200


def test_odd_events_are_answered_ok_and_do_not_stop_the_listener() -> None:
    listener = se.Listener()
    stream = b"".join([
        event("PROCESS_STATE_RUNNING", ""),                       # no processname
        event("PROCESS_STATE_WEIRD", "processname:p3 groupname:g3"),
        event("SUPERVISOR_STATE_CHANGE_RUNNING", ""),
        event("PROCESS_LOG_STDOUT", "processname:p3 groupname:g3 pid:1 channel:stdout\n"
                                    "two\nlines: of output\n"),
        state("RUNNING", "p3", "g3", "pid:9"),
    ])
    handled, out = run(stream, listener)
    assert handled == 5
    assert out.count("RESULT 2\nOK") == 5
    assert value(listener, "rosey_supervisor_process_state", program="g3", process="p3") == 20
    assert value(listener, "rosey_supervisor_events_total", event="PROCESS_STATE_RUNNING") == 2


def test_sync_and_callers_file(tmp_path: Path) -> None:
    infos: list[dict[str, Any]] = [
        {"group": "caller", "name": f"caller-{n}", "statename": s}
        for n, s in enumerate(["RUNNING", "RUNNING", "STOPPED", "STOPPED"])]
    calls = []

    def fetch() -> list[dict[str, Any]]:
        calls.append(1)
        return infos

    path = tmp_path / "callers.json"
    listener = se.Listener(callers_file=path, host="0.0.0.0", caller_base_port=9470,
                           fetch=fetch)
    stream = b"".join([
        state("STARTING", "caller-2", "caller", "tries:0"),   # rosey scale 3
        state("STOPPING", "caller-0", "caller", "pid:5"),
        state("STOPPED", "caller-0", "caller", "pid:5"),      # rosey scale ... stops 0
        state("EXITED", "caller-1", "caller", "expected:0 pid:6"),  # crashed: still wanted
    ])
    listener.run(io.BytesIO(stream), io.StringIO())
    assert calls == [1]  # synced once at start
    assert value(listener, "rosey_supervisor_process_state", program="caller",
                 process="caller-3") == 0
    groups = json.loads(path.read_text())
    assert groups == [{"targets": ["127.0.0.1:9471", "127.0.0.1:9472"],
                       "labels": {"rosey_role": "caller"}}]
    listener.run(io.BytesIO(event("TICK_60", "when:1700000000")), io.StringIO())
    assert len(calls) == 3  # start of the second run + the tick
    # The tick re-read the (stale) RPC view: caller-0 and -1 RUNNING, 2 and 3 STOPPED.
    assert json.loads(path.read_text())[0]["targets"] == ["127.0.0.1:9470", "127.0.0.1:9471"]


def test_rpc_failure_is_logged_not_raised(tmp_path: Path) -> None:
    def fetch() -> list[dict[str, Any]]:
        raise OSError("connection refused")

    path = tmp_path / "callers.json"
    listener = se.Listener(callers_file=path, fetch=fetch)
    handled, out = run(event("TICK_60", "when:1"), listener)
    assert handled == 1 and out.endswith("OKREADY\n")
    assert json.loads(path.read_text()) == []


def test_tokens_tolerates_colons_and_bare_words() -> None:
    assert se.tokens("a:1 b:x:y c") == {"a": "1", "b": "x:y", "c": ""}
    assert se.read_event(io.BytesIO(b"")) is None


def test_rendered_supervisord_conf_declares_the_listener(tmp_path: Path) -> None:
    """supervisord's own parser accepts the section (eventlisteners refuse e.g.
    redirect_stderr) and gets the port from metrics.events_port."""
    from supervisor.options import ServerOptions

    from rosey.cli.launch import render_supervisord_conf
    from rosey.config import load_config

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"channel": "c", "user": ["bot", ""],
                                  "metrics": {"events_port": 9555},
                                  "paths": {"run_dir": str(tmp_path / "run")}}))
    (tmp_path / "run").mkdir()
    conf = tmp_path / "supervisord.conf"
    conf.write_text(render_supervisord_conf(load_config(str(config)), config, False))
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    groups = {group.name: group for group in options.process_group_configs}
    events = groups["events"]
    assert type(events).__name__ == "EventListenerPoolConfig"
    assert {e.__name__ for e in events.pool_events} == {"ProcessStateEvent", "Tick60Event"}
    process = events.process_configs[0]
    assert "-m rosey.procs.events --port 9555 --run-dir " in process.command
    assert process.priority < groups["router"].process_configs[0].priority  # starts first
    assert process.stdout_logfile is None  # stdout is the protocol channel


def test_lean_families_match_the_catalog() -> None:
    """The listener exports the catalog's names, help, types and labels without importing
    prometheus_client (rosey.events.exposition); the memory target too."""
    lean = {f.name: f for f in EventMetrics().families()}
    for name, family in lean.items():
        metric = next(m for m in catalog.catalog() if catalog.name_of(m) in
                      (name, name.removesuffix("_total")))
        described = next(iter(metric.describe()))
        assert (family.doc, family.kind) == (described.documentation, described.type), name
        assert family.labels == tuple(metric._labelnames), name
    assert {"rosey_supervisor_process_state", "rosey_supervisor_process_exits_total",
            "rosey_supervisor_process_starts_total", "rosey_supervisor_events_total",
            "rosey_config_response_timeout_seconds"} <= set(lean)
    assert catalog.MEMORY_TARGETS["events"] == se.MEMORY_TARGET


@pytest.mark.integration
def test_exposition_parses_and_rpc_reads_supervisord(tmp_path: Path) -> None:
    """/metrics as prometheus_client's own parser reads it; getAllProcessInfo over a real
    supervisord's Unix socket."""
    import subprocess
    import sys
    import time
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from tests.e2e.harness import free_port

    metrics = EventMetrics()
    listener = se.Listener(metrics=metrics)
    run(state("RUNNING", "conn", "conn", "pid:3"), listener)
    metrics.build_info.set("1.2", "events", value=1)
    port = free_port()
    exposition.serve(metrics, "127.0.0.1", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("rosey_supervisor_process_state",
                    (("process", "conn"), ("program", "conn")))] == 20
    assert samples[("rosey_build_info", (("process", "events"), ("version", "1.2")))] == 1
    assert 1e6 < samples[("process_resident_memory_bytes", ())] < 1e9
    assert samples[("process_start_time_seconds", ())] > 1.6e9

    sock = tmp_path / "s.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[unix_http_server]\nfile={sock}\n[supervisord]\nnodaemon=true\n"
                    f"logfile={tmp_path}/sd.log\npidfile={tmp_path}/sd.pid\n"
                    "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                    "supervisor.rpcinterface:make_main_rpcinterface\n"
                    "[program:sleeper]\ncommand=sleep 30\nstartsecs=0\n")
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        infos: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            try:
                infos = se.all_process_info(str(sock))
            except OSError:
                time.sleep(0.1)
                continue
            if infos and infos[0].get("statename") == "RUNNING":
                break
            time.sleep(0.1)
        assert [(i["group"], i["name"], i["statename"]) for i in infos] == \
            [("sleeper", "sleeper", "RUNNING")]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
