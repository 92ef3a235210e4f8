"""Loaded by every Rosey process when bench.pipeline --profile puts this folder on
PYTHONPATH: SIGUSR1 starts cProfile in the process's main thread (the event loop),
SIGUSR2 stops it and writes ``$BENCH_PROFILE_DIR/<process>.prof``.  Never used outside
the bench."""

import os
import signal
import time

_DIR = os.environ.get("BENCH_PROFILE_DIR", "")


def _install() -> None:
    import cProfile

    with open("/proc/self/cmdline", "rb") as handle:
        argv = handle.read().decode(errors="replace").split("\0")
    module = next((a for a in argv if a.startswith("procs.")), "")
    if not module:
        return
    name = module.removeprefix("procs.")
    if "--index" in argv:
        name += "-" + argv[argv.index("--index") + 1]
    # CPU time of the main thread, not wall time: on a busy machine a wall-clock profile
    # charges whatever function was running when the scheduler preempted the process.
    profile = cProfile.Profile(time.thread_time_ns, 1e-9)

    def start(_signum: int, _frame: object) -> None:
        profile.enable()

    def stop(_signum: int, _frame: object) -> None:
        profile.disable()
        profile.dump_stats(os.path.join(_DIR, f"{name}.prof"))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


if _DIR:
    _install()
if os.environ.get("BENCH_UVLOOP") == "1":  # A/B of the event loop (bench.pipeline --uvloop)
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
