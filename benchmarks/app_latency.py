"""Milliseconds per step of the app (`snake-eqm app`), batch 1, one CPU thread, printed as JSON.

    python benchmarks/app_latency.py [--model PATH_OR_REPO] [--steps 40] [--no-server]

`session`: one `GameSession.play(agent)` in the library (the agent's move, the real step, and the model's
view of the new board: 4 noise seeds + 4 what-ifs); `decision`: the model's view alone.
`server`: one `/step` request through gradio_client against a real local server (pictures and JSON
included; server and client share this process, so its CPU time counts both), when gradio is installed.
Wall times depend on the machine's load (reported); `median_cpu_ms` much less so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import sys
import time

import torch


def _summary(seconds: list[float], cpu_seconds: list[float] | None = None) -> dict:
    ms = sorted(1000 * s for s in seconds)
    summary = {"steps": len(ms), "median_ms": round(statistics.median(ms), 1),
               "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1), "max_ms": round(ms[-1], 1),
               "mean_ms": round(statistics.fmean(ms), 1)}
    if cpu_seconds:  # CPU time of this process (all its threads): what the step costs, whatever the load
        summary["median_cpu_ms"] = round(1000 * statistics.median(cpu_seconds), 1)
    return summary


def time_sessions(model, agents, steps: int, seed: int) -> dict:
    from snake_world_eqm.app import GameSession

    result = {}
    for agent in agents:
        session, per_step, cpu, decisions = GameSession(model, seed=seed), [], [], []
        session.play(agent)  # warm-up (first planner call builds it)
        while len(per_step) < steps:
            if session.done:
                session = GameSession(model, seed=seed + len(per_step) + 1)
            started, cpu_started = time.perf_counter(), time.process_time()
            session.play(agent)
            per_step.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            if session.analysis is not None:
                decisions.append(session.analysis.seconds)
        result[agent] = {"session": _summary(per_step, cpu), "decision": _summary(decisions)}
    return result


def time_server(model, steps: int, seed: int) -> dict:
    from gradio_client import Client

    from snake_world_eqm.app import launch

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = launch(model, host="127.0.0.1", port=port, block=False)
    try:
        client = Client(demo.local_url, verbose=False, download_files=False, analytics_enabled=False)
        client.predict("10x10", seed, "eqm", api_name="/new_game")
        per_step, cpu = [], []
        for _ in range(steps):
            started, cpu_started = time.perf_counter(), time.process_time()
            data = client.predict("eqm", api_name="/step")[-1]
            per_step.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            if data["done"]:
                client.predict("10x10", seed + len(per_step), "eqm", api_name="/new_game")
        return {"eqm_step_request": _summary(per_step, cpu)}
    finally:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the JSON only
            demo.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the shipped 10x10 checkpoint")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per agent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agents", nargs="+", default=["eqm", "planner", "expert"])
    parser.add_argument("--no-server", action="store_true", help="skip the gradio round trip")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    torch.set_num_threads(1)  # what `snake-eqm app` runs with
    torch.set_flush_denormal(True)
    from snake_world_eqm.app import load_model

    model = load_model(args.model)
    result = {"model": args.model or "shipped snake-eqm-10x10", "torch_threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
              "library": time_sessions(model, args.agents, args.steps, args.seed)}
    if not args.no_server:
        try:
            result["server"] = time_server(model, args.steps, args.seed)
        except ImportError as error:
            result["server"] = f"not measured: {error}"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
