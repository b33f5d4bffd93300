"""CPU seconds an idle `snake-eqm app` server burns with no browser connected (issue 35: at most 0.5 s a minute).

Starts the app in a child process on 127.0.0.1, waits until it answers and its start-up work has settled,
then reads the child's CPU time (user + system, children included) with psutil over `--seconds` (default
60) and prints JSON. Run it on an otherwise idle machine and report `uptime` beside the number: other
processes do not add to the child's CPU time, but they slow its start-up.

    python benchmarks/app_idle_cpu.py [--seconds 60] [--settle 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import psutil

from snake_world_eqm.provenance import with_provenance


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cpu(process: psutil.Process) -> float:
    total = 0.0
    for proc in (process, *process.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the first answer before measuring")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up if the server does not answer")
    args = parser.parse_args()
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-m", "snake_world_eqm.cli", "app", "--host", "127.0.0.1",
                              "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process = psutil.Process(child.pid)
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read(1)
                break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the app did not start") from None
                time.sleep(1.0)
        started_cpu = _cpu(process)
        time.sleep(args.settle)
        before, wall = _cpu(process), time.monotonic()
        time.sleep(args.seconds)
        after, wall = _cpu(process), time.monotonic() - wall
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    result = {"benchmark": "app_idle_cpu", "idle_seconds": round(wall, 1),
              "idle_cpu_seconds": round(after - before, 3),
              "idle_cpu_seconds_per_minute": round((after - before) * 60.0 / wall, 3),
              "startup_cpu_seconds": round(started_cpu, 2)}
    print(json.dumps(with_provenance(result), indent=2))  # the machine's load average is in its provenance
    return 0


if __name__ == "__main__":
    sys.exit(main())
