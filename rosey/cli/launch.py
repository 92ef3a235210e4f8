"""How ``rosey run`` starts the deployment: the supervisord config rendered from the
template, supervisord itself (``rosey run`` becomes it, or relays its output under
systemd), and the first callers once supervisord answers."""

from __future__ import annotations

import os
import shlex
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from rosey.cli import exit_codes
from rosey.config import Config


def render_supervisord_conf(cfg: Config, config_path: Path, log_to_files: bool) -> str:
    template = resources.files("rosey").joinpath("templates/supervisord.conf.in").read_text()
    run_dir = cfg.paths.run_dir
    if log_to_files:
        logging = ("redirect_stderr=true\nstdout_logfile=%(program_name)s-%(process_num)d.log\n"
                   "stdout_logfile_maxbytes=10MB\nstdout_logfile_backups=5")
        logging = logging.replace("%(program_name)s-%(process_num)d.log",
                                  f"{run_dir}/%(program_name)s-%(process_num)d.log")
    else:
        # In the foreground (and under systemd) logs go to supervisord's stdout.
        logging = "redirect_stderr=true\nstdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0"
    return string.Template(template).substitute(
        run_dir=run_dir, python=sys.executable, config=str(config_path),
        workdir=str(config_path.parent), caller_max=cfg.callers.max,
        caller_stopwait=int(cfg.llm.response_timeout) + 5, logging=logging,
        events_port=cfg.metrics.events_port, events_args=_events_args(cfg))


def _events_args(cfg: Config) -> str:
    """The event listener's settings as arguments: it does not load the config (it stays
    small; see rosey.events.listener)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("rosey")
    except PackageNotFoundError:
        ours = "0+unknown"
    m = cfg.metrics
    return (f"--run-dir {shlex.quote(cfg.paths.run_dir)} --host {shlex.quote(m.host)} "
            f"--caller-base-port {m.caller_base_port} --metrics {'on' if m.enabled else 'off'} "
            f"--response-timeout {cfg.llm.response_timeout:g} --log-level {cfg.log.level} "
            f"--version {shlex.quote(ours)}")


def run_relayed(cfg: Config, argv: list[str], env: dict[str, str]) -> int:
    """supervisord with its stdout on a pipe that this process copies to the socket."""
    from rosey.cli import stdout_relay

    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    relay = stdout_relay.start(child)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)
    start_callers(cfg, child.pid)
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
    if relay is not None:
        relay.join(timeout=2)
    if code != 0:
        print(f"rosey: supervisord exited with status {code}; see "
              f"{cfg.paths.run_dir}/supervisord.log",
              file=sys.stderr)
        return exit_codes.FAILED
    return exit_codes.OK


def detach(job: Callable[[], object]) -> None:
    """Run ``job`` in a grandchild that init adopts (a child would be reaped by
    supervisord as an "unknown pid"); return once the intermediate child is gone."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked children
        code = 0
        try:
            if os.fork() == 0:
                os.setsid()  # a Ctrl-C meant for supervisord does not cut it short
                job()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_callers(cfg: Config, supervisord_pid: int) -> bool:
    """Start the persisted pool size (``rosey scale``) or ``callers.count`` members once
    supervisord answers on its socket."""
    import http.client
    import xmlrpc.client

    from rosey.cli import scale as pool

    count = pool.desired_count(cfg)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alive(supervisord_pid):
        proxy = pool.supervisor(cfg)  # a failed request leaves its connection unusable
        try:
            proxy.supervisor.getPID()
        except (OSError, http.client.HTTPException, xmlrpc.client.Error):
            time.sleep(0.05)
            continue
        # Started without waiting on each (startsecs apiece would add up).
        report = pool.scale(proxy, count, wait=0)
        for error in report.errors:
            print(f"rosey: {error}", file=sys.stderr)
        return True
    print("rosey: supervisord did not come up; see "
          f"{cfg.paths.run_dir}/supervisord.log", file=sys.stderr)
    return False
