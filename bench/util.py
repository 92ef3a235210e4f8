"""Small measuring helpers shared by the benchmarks (and the pool's memory test)."""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size, MiB: shared pages divided among the processes mapping them
    (the sum over processes is what they really hold together; 0 when gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, PermissionError):
        pass
    return 0.0
