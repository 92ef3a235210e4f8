"""The ``rosey`` command: run, check-config, status, scale, ctl, … (docs/CLI.md).

Every exit code is a name from ``rosey.cli.exit_codes``; docs/CLI.md lists them per command
and tests/unit/test_cli_doc.py keeps the two in step."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rosey import file_modes
from rosey.cli import exit_codes, launch
from rosey.config import Config, ConfigError, load_config


def _config_path(path: str | None) -> Path:
    """--config, else $ROSEY_CONFIG, else ./config.json (as load_config reads it)."""
    return Path(path or os.environ.get("ROSEY_CONFIG") or "config.json")


def _load(path: str | None) -> tuple[Config, Path]:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"rosey: {exc}", file=sys.stderr)
        raise SystemExit(exit_codes.CONFIG) from exc
    return cfg, _config_path(path).resolve()


def _supervisorctl(cfg: Config, *args: str) -> subprocess.CompletedProcess[str]:
    conf = Path(cfg.paths.run_dir) / "supervisord.conf"
    return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf),
                           *args], capture_output=True, text=True, timeout=60)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Every error at once (one line each, exit 2); secret-file warnings once valid."""
    from rosey.config import check_config_file
    from rosey.config_channels import channel_configs, resolved_lines

    report = check_config_file(args.config)
    for line in report.errors:
        print(f"rosey: {line}", file=sys.stderr)
    if len(report.errors) > 1:
        print(f"rosey: {len(report.errors)} problems; fix them all, then run check-config "
              "again", file=sys.stderr)
    if report.errors or report.config is None:
        return exit_codes.CONFIG
    for line in report.warnings:
        print(f"rosey: {line}", file=sys.stderr)
    cfg = report.config
    path = _config_path(args.config).resolve()
    names = [c.channel for c in channel_configs(cfg)]
    where = f"channel {names[0]}" if len(names) == 1 else f"{len(names)} channels"
    print(f"{path}: OK ({where} on {cfg.domain} as {cfg.bot_name}, "
          f"{'guest' if not cfg.password else 'registered'}; llm {cfg.llm.provider} "
          f"{cfg.llm.model}; {cfg.callers.count} of {cfg.callers.max} callers)")
    for line in resolved_lines(cfg):
        print(line)
    return exit_codes.OK


def cmd_init_config(args: argparse.Namespace) -> int:
    from rosey.cli.init_config import Exists, write_examples

    dest = _config_path(args.config)
    prompt = Path(args.prompt) if args.prompt else None
    try:
        write_examples(dest, prompt)
    except Exists as exc:
        print(f"rosey: {exc} exists; not overwritten (move it away or name another file)",
              file=sys.stderr)
        return exit_codes.FAILED
    if prompt is not None:
        print(f"wrote {prompt} (a persona prompt; edit it freely)")
    print(f"wrote {dest}: set domain, channel and user (a name nobody has registered there), "
          f"then run: rosey check-config {shlex.quote(str(dest))}")
    return exit_codes.OK


def cmd_run(args: argparse.Namespace) -> int:
    cfg, path = _load(args.config)
    # Sockets, logs and the database: the umask (--umask, 077 by default) set in main()
    # is inherited by supervisord and every process it starts.
    run_dir = file_modes.private_dir(cfg.paths.run_dir)
    file_modes.private_dir(cfg.paths.data_dir)
    sock = run_dir / "supervisor.sock"
    if sock.exists() and _supervisorctl(cfg, "pid").returncode == 0:
        print(f"rosey: already running in {run_dir} (rosey status)", file=sys.stderr)
        return exit_codes.FAILED
    conf = run_dir / "supervisord.conf"
    conf.write_text(launch.render_supervisord_conf(cfg, path, args.log_files))
    env = dict(os.environ, ROSEY_CONFIG=str(path))
    from rosey.cli import stdout_relay

    # `rosey run > run.log`: every program reopens /dev/stdout (see there).
    stdout_relay.append_when_file(sys.stdout, sys.stderr)
    argv = [sys.executable, "-m", "rosey.cli.supervisord_main", "-n", "-c", str(conf)]
    if stdout_relay.stdout_is_socket():  # under systemd (see stdout_relay)
        return launch.run_relayed(cfg, argv, env)
    # Nothing is left for this process to do once supervisord runs: it becomes supervisord
    # (same pid, so signals, the exit code and systemd's main pid are supervisord's) instead
    # of idling beside it as a 27 MiB parent.  The callers are started by a short-lived
    # detached copy of this process.
    sys.stdout.flush()
    sys.stderr.flush()
    supervisord_pid = os.getpid()
    launch.detach(lambda: launch.start_callers(cfg, supervisord_pid))
    os.execve(sys.executable, argv, env)
    return exit_codes.FAILED  # pragma: no cover - execve does not return


def cmd_status(args: argparse.Namespace) -> int:
    """Exit codes: OK, FAILED (a process is down), CONN_STOPPED, NOT_RUNNING (docs/CLI.md)."""
    cfg, _ = _load(args.config)
    from rosey.cli import status

    def supervisor_status() -> tuple[int, str, str]:
        if not (Path(cfg.paths.run_dir) / "supervisord.conf").exists():
            return status.EXIT_NOT_RUNNING, "", ""
        done = _supervisorctl(cfg, "status")
        return done.returncode, done.stdout, done.stderr

    return status.run(cfg, supervisor_status)


def cmd_scale(args: argparse.Namespace) -> int:
    """Run exactly ``count`` callers: start / stop members, never restart running ones.

    Stopped members drain (finish their in-flight calls) in parallel; the command waits
    for them up to ``stopwaitsecs``.  The count persists for the next ``rosey run``."""
    from rosey.cli import scale as pool

    cfg, _ = _load(args.config)
    if not 0 <= args.count <= cfg.callers.max:
        print(f"rosey: scale: expected 0..{cfg.callers.max} (callers.max)", file=sys.stderr)
        return exit_codes.CONFIG
    Path(cfg.paths.run_dir).mkdir(parents=True, exist_ok=True)
    pool.save_count(cfg, args.count)
    try:
        report = pool.scale(pool.supervisor(cfg), args.count,
                            wait=cfg.llm.response_timeout + 10)
    except OSError:
        print(f"rosey: not running in {cfg.paths.run_dir}; `rosey run` will start "
              f"{args.count} callers", file=sys.stderr)
        return exit_codes.NOT_RUNNING
    for error in report.errors:
        print(f"rosey: {error}", file=sys.stderr)
    running = sorted(n for n, state in report.states.items() if state == "RUNNING")
    print(f"callers: started {_members(report.started)}, stopped "
          f"{_members(report.stopped)}; running {len(running)} of {cfg.callers.max} "
          f"({_members(running)})")
    return exit_codes.OK if report.settled and not report.errors else exit_codes.FAILED


def cmd_apply(args: argparse.Namespace) -> int:
    """Validate the config, then SIGHUP conn and router: each applies the channel diff."""
    from rosey.cli import apply as applying
    from rosey.cli.scale import supervisor

    cfg, path = _load(args.config)
    try:
        done = applying.apply(supervisor(cfg))
    except OSError:
        print(f"rosey: not running in {cfg.paths.run_dir} (start it with rosey run)",
              file=sys.stderr)
        return exit_codes.NOT_RUNNING
    for error in done.errors:
        print(f"rosey: apply: {error}", file=sys.stderr)
    if not done.signalled:
        return exit_codes.NOT_RUNNING
    print(f"{path}: valid; sent SIGHUP to {' and '.join(done.signalled)}: each applies the "
          "channel changes and logs one line per change")
    return exit_codes.OK if not done.errors else exit_codes.FAILED


def _members(indexes: list[int]) -> str:
    return ", ".join(f"caller-{n}" for n in indexes) or "none"


def cmd_ctl(args: argparse.Namespace) -> int:
    cfg, _ = _load(args.config)
    from rosey.cli.control import send_command

    if not (Path(cfg.paths.run_dir) / "control").exists():  # no router ever bound it here
        print(f"rosey: not running in {cfg.paths.run_dir} (start it with rosey run)",
              file=sys.stderr)
        return exit_codes.NOT_RUNNING
    ok, text = send_command(cfg.paths.run_dir, args.words, timeout=args.timeout,
                            channel=args.channel)
    print(text)
    return exit_codes.OK if ok else exit_codes.FAILED


def cmd_backup(args: argparse.Namespace) -> int:
    cfg, _ = _load(args.config)
    from rosey.store.backup import backup

    source = Path(cfg.paths.database)
    if not source.exists():
        print(f"rosey: no database at {source} yet", file=sys.stderr)
        return exit_codes.FAILED
    dest = Path(args.dest) if args.dest else Path(cfg.paths.data_dir) / "backups" / (
        time.strftime("rosey-%Y%m%d-%H%M%S.db"))
    size = backup(source, dest)
    print(f"backed up {source} to {dest} ({size} bytes)")
    return exit_codes.OK


def _channels(cfg: Config, name: str) -> list[Config]:
    """``--channel``: the merged settings of channel ``name`` (names without case, as the
    config compares them), or of every channel when none is named; [] when ``name`` is not
    in the config (said why)."""
    from rosey.config_channels import channel_configs

    children = channel_configs(cfg)
    found = [c for c in children if c.channel.lower() == name.lower()] if name else children
    if not found:
        print(f"rosey: --channel {name}: not in the config; its channels: "
              + ", ".join(c.channel for c in children), file=sys.stderr)
    return found


def cmd_replay(args: argparse.Namespace) -> int:
    top, _ = _load(args.config)
    chosen = _channels(top, args.channel)  # default: the first channel
    if not chosen:
        return exit_codes.CONFIG
    cfg = chosen[0]
    import asyncio

    from rosey.cli.replay import LogError, read_log, replay

    try:
        lines = read_log(Path(args.log))
    except LogError as exc:
        print(f"rosey: replay: {exc}", file=sys.stderr)
        return exit_codes.CONFIG
    print(f"replaying {len(lines)} lines from {args.log} (virtual clock, model latency "
          f"{args.latency:g} s, no model called)", file=sys.stderr)
    asyncio.run(replay(cfg, lines, latency=args.latency, answer=args.answer))
    return exit_codes.OK


def cmd_ask(args: argparse.Namespace) -> int:
    top, _ = _load(args.config)
    chosen = _channels(top, args.channel)  # default: the first channel
    if not chosen:
        return exit_codes.CONFIG
    cfg = chosen[0]
    import asyncio

    from rosey.cli.ask import AskError, ask

    try:
        asked = asyncio.run(ask(cfg, args.question, as_user=args.as_user,
                                persona=args.persona, show_prompt=args.show_prompt))
    except AskError as exc:
        print(f"rosey: ask: {exc}", file=sys.stderr)
        return exit_codes.CONFIG
    if not asked.ok:  # what was printed is the fallback: a script must be able to tell
        return exit_codes.MODEL_FAILED
    return exit_codes.OK if asked.parts else exit_codes.FAILED


def cmd_stats(args: argparse.Namespace) -> int:
    """Channel statistics; the logic is in rosey/cli/stats.py."""
    cfg, _ = _load(args.config)
    from rosey.cli.stats import run_stats

    chosen = _channels(cfg, args.channel)  # default: every channel
    if not chosen:
        return exit_codes.CONFIG
    return run_stats(chosen, args.days, args.until, args.json)


def cmd_doctor(args: argparse.Namespace) -> int:
    cfg, _ = _load(args.config)
    from rosey.cli.doctor import run_doctor

    return exit_codes.OK if run_doctor(cfg) == 0 else exit_codes.FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rosey", description="Rosey, the CyTube LLM bot",
        epilog="Exit codes and what each command prints: docs/CLI.md.")
    parser.add_argument("--config", default=None,
                        help="config file (default: $ROSEY_CONFIG or ./config.json)")
    parser.add_argument("--umask", type=file_modes.parse_umask,
                        default=file_modes.DEFAULT_UMASK,
                        help="octal umask for every file and folder rosey creates (default "
                        "077: folders 0700, files 0600; 027 lets the group read)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="validate config, then run supervisord in the foreground")
    run.add_argument("--log-files", action="store_true",
                     help="log to rotated files in the run dir instead of stdout")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate the config and exit")
    check.add_argument("file", nargs="?", default=None, metavar="FILE",
                       help="the config to check (default: --config, $ROSEY_CONFIG or "
                       "./config.json)")
    check.set_defaults(func=cmd_check_config)
    init = sub.add_parser("init-config", help="write the example config to start from")
    init.add_argument("file", nargs="?", default=None, metavar="FILE",
                      help="where (default: --config, $ROSEY_CONFIG or ./config.json); "
                      "never overwritten")
    init.add_argument("--prompt", default=None, metavar="FILE",
                      help="also write the example persona prompt to FILE and name it in "
                      "llm.system_prompt_file")
    init.set_defaults(func=cmd_init_config)
    status = sub.add_parser("status", help="supervisord status of every process and a live "
                            "summary; exit 0 running, 1 a process is down, 5 conn stopped "
                            "retrying (the reason and fix on stderr), 4 not running")
    status.set_defaults(func=cmd_status)
    scale = sub.add_parser("scale", help="run N callers (0..callers.max)")
    scale.add_argument("count", type=int, metavar="N",
                       help="how many callers to run (0..callers.max)")
    scale.set_defaults(func=cmd_scale)
    backup = sub.add_parser("backup", help="copy the live database to a file")
    backup.add_argument("dest", nargs="?", default=None, metavar="DEST",
                        help="the copy (default: paths.data_dir/backups/rosey-DATE-TIME.db)")
    backup.set_defaults(func=cmd_backup)
    replay_cmd = sub.add_parser("replay", help="what the bot would have done with a chat log")
    replay_cmd.add_argument("log", metavar="LOG",
                            help="rosey.db, JSON lines of chat frames, or text lines "
                            "'[HH:MM:SS] name: text' (also [YYYY-MM-DD HH:MM:SS], ISO or "
                            "epoch seconds)")
    replay_cmd.add_argument("--latency", type=float, default=2.0,
                            help="simulated model latency, seconds (default 2)")
    replay_cmd.add_argument("--answer", default="(the model's answer)",
                            help="the text every simulated model call answers with")
    replay_cmd.set_defaults(func=cmd_replay)
    ask_cmd = sub.add_parser("ask", help="one question through the real router and caller "
                             "path; prints the chat messages the channel would see")
    ask_cmd.add_argument("question", metavar="QUESTION",
                         help="the chat message, as the user would type it")
    ask_cmd.add_argument("--as", dest="as_user", default="alice",
                         help="who asks (default alice)")
    ask_cmd.add_argument("--persona", default="", help="a name from router.personas")
    ask_cmd.add_argument("--show-prompt", action="store_true", help="print the turns sent")
    for sp in (ask_cmd, replay_cmd):
        sp.add_argument("--channel", default="", metavar="NAME",
                        help="as in this channel of the config (default: the first)")
    ask_cmd.set_defaults(func=cmd_ask)
    apply_cmd = sub.add_parser("apply", help="validate the config, then have conn and router "
                               "apply it (channels added, removed, changed) without a restart")
    apply_cmd.set_defaults(func=cmd_apply)
    doctor = sub.add_parser("doctor", help="pre-flight: CyTube login, rank, provider, model")
    doctor.set_defaults(func=cmd_doctor)
    ctl = sub.add_parser("ctl", help="send a command to the router (status, llm on|off, ...)")
    ctl.add_argument("words", nargs="+", metavar="WORDS",
                     help="the command and its arguments, e.g. llm off")
    # kick, add… wait for the server's answer
    ctl.add_argument("--timeout", type=float, default=20.0,
                     help="seconds to wait for the router's answer (default 20)")
    ctl.add_argument("--channel", default="", metavar="NAME",
                     help="the channel it acts on (needed when the router serves several)")
    ctl.set_defaults(func=cmd_ctl)
    stats_cmd = sub.add_parser("stats", help="channel statistics: top chatters, peaks per day, "
                               "busiest hours, recent media")
    stats_cmd.add_argument("--days", type=int, default=7, help="how many days back (default 7)")
    stats_cmd.add_argument("--until", default="", metavar="DAY",
                           help="last day, YYYY-MM-DD (default today)")
    stats_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    stats_cmd.add_argument("--channel", default="", metavar="NAME",
                           help="one channel (default: every channel of the config)")
    stats_cmd.set_defaults(func=cmd_stats)
    for sp in (run, check, init, status, scale, ctl, backup, replay_cmd, ask_cmd, doctor,
               stats_cmd, apply_cmd):
        # Also accepted after the command (`rosey run --config x`); shown once, above.
        sp.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--umask", type=file_modes.parse_umask, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "file", None):
        args.config = args.file
    os.umask(args.umask)  # inherited by supervisord and every process it starts
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
