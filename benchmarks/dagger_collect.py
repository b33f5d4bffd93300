"""On-policy (DAgger) collection rate: policy states labelled per second, as JSON.

    python benchmarks/dagger_collect.py [--model PATH_OR_REPO_ID] [--num-samples 51200] [--threads 2]
        [--policy-dtypes float32 bfloat16]

Games are played by the model (EqM agent by default) mixed with the expert at `--beta`, 256 games at a
time so the model batches; every state is labelled by the expert with all four successors and written as
parquet, exactly as `python -m dataset_builder --policy ...` does. Wall-clock rates depend on what else
runs on the machine, so CPU time is reported beside them, and the model's share of the time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

TARGET_STATES_PER_S = 5_000


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def collect_once(args, dtype: str) -> dict:
    """One on-policy build with the policy in `dtype`; its rate, CPU time and the policy's share."""
    from dataset_builder.builder import build_dataset
    from snake_world_eqm.agents.factory import load_policy
    from snake_world_eqm.data.generate import GenerationConfig

    act = load_policy(args.model, args.agent, 10, 10, dtype=dtype)
    policy_time = {"wall": 0.0, "cpu": 0.0, "boards": 0}

    def timed_policy(boards):
        start, cpu = time.perf_counter(), _cpu_seconds()
        actions = act(boards)
        policy_time["wall"] += time.perf_counter() - start
        policy_time["cpu"] += _cpu_seconds() - cpu
        policy_time["boards"] += len(boards)
        return actions

    config = GenerationConfig(num_samples=args.num_samples, seed=0, perturb_prob=0.0, beta=args.beta,
                              parallel_games=args.parallel_games, policy_name=args.model, policy=timed_policy)
    with tempfile.TemporaryDirectory() as folder:
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        build_dataset(config, Path(folder) / "dagger", progress=False, command="benchmarks/dagger_collect.py")
        seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
    rate = args.num_samples / seconds
    return {
        "states_per_s": round(rate, 1),
        "meets_target": rate >= TARGET_STATES_PER_S,
        "states_per_cpu_s": round(args.num_samples / max(cpu_seconds, 1e-9), 1),
        # The policy is asked only about the states it plays (a share 1 - beta of them).
        "policy_boards": policy_time["boards"],
        "policy_boards_per_s": round(policy_time["boards"] / max(policy_time["wall"], 1e-9), 1),
        "policy_share_of_wall": round(policy_time["wall"] / seconds, 3),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


def dtype_agreement(args, dataset: str, max_rows: int = 20_000) -> dict:
    """How often the bfloat16 policy picks the float32 policy's move, on the test rows of `dataset`."""
    import numpy as np

    from snake_world_eqm.agents.factory import load_policy
    from snake_world_eqm.data.loading import load_snake_dataset

    split = load_snake_dataset(dataset)["test"].with_format("numpy")
    boards = split.select(range(min(max_rows, len(split))))[:]["state"].astype(np.int8)
    moves = {}
    for dtype in ("float32", "bfloat16"):
        act = load_policy(args.model, args.agent, 10, 10, dtype=dtype)
        moves[dtype] = np.concatenate([act(boards[i:i + 512]) for i in range(0, len(boards), 512)])
    return {"dataset": dataset, "rows": int(len(boards)),
            "same_move": round(float((moves["float32"] == moves["bfloat16"]).mean()), 5)}


def main() -> None:
    import torch

    from snake_world_eqm.shipped import PRETRAINED_10X10

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(PRETRAINED_10X10))
    parser.add_argument("--num-samples", type=int, default=51_200)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument("--agent", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--parallel-games", type=int, default=256)
    parser.add_argument("--policy-dtypes", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"],
                        help="one build per dtype, in this order, in one process (so their ratio is fair)")
    parser.add_argument("--compare-on", default=None, metavar="DATASET",
                        help="also report how often the bfloat16 policy picks the float32 move on DATASET's test rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {dtype: collect_once(args, dtype) for dtype in args.policy_dtypes}
    best = max(runs, key=lambda dtype: runs[dtype]["states_per_s"])
    from snake_world_eqm.provenance import with_provenance

    result = {
        "benchmark": "dagger_collection",
        "model": args.model,
        "states_per_s": runs[best]["states_per_s"],
        "best_policy_dtype": best,
        "target_states_per_s": TARGET_STATES_PER_S,
        "meets_target": runs[best]["meets_target"],
        "by_policy_dtype": runs,
        "threads": args.threads,
        "parallel_games": args.parallel_games,
        "num_samples": args.num_samples,
        "beta": args.beta,
        "machine": {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2), "python": platform.python_version()},
    }
    if {"float32", "bfloat16"} <= set(runs):
        result["bfloat16_over_float32_states_per_cpu_s"] = round(
            runs["bfloat16"]["states_per_cpu_s"] / runs["float32"]["states_per_cpu_s"], 2)
    if args.compare_on:
        result["bfloat16_same_move_as_float32"] = dtype_agreement(args, args.compare_on)
    print(json.dumps(with_provenance(result), indent=2))


if __name__ == "__main__":
    main()
