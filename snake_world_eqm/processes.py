"""Process hygiene shared by the dataset builder and training: how many workers a machine can take, and
workers that die with their parent instead of running on (and writing) after it was killed."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and `taskset` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def capped_workers(requested: int, what: str = "workers") -> int:
    """`requested`, but never more than the CPUs available: 99999 workers forked ~1,000 processes and ran a
    machine out of memory. Says so on stderr when it caps."""
    limit = available_cpus()
    if requested > limit:
        print(f"note: {requested} {what} requested, {limit} CPU(s) available: using {limit}", file=sys.stderr)
        return limit
    return requested


def die_with_parent(parent_pid: int | None = None) -> None:
    """In a worker: be killed when the parent dies (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`), and exit at once
    if the parent is already gone. Elsewhere a no-op; pool workers there still end when their queue closes."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except OSError:
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the signal was armed
