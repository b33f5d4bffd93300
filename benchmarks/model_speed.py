"""Speed of the EqM world model against the behaviour-cloning baseline with the same encoder, in one run.

Prints JSON: per config and batch size, the median seconds of
  * a training step (forward + backward + AdamW step) of each model, and their ratio (goal <= 1.3);
  * `sample()` with 10 NAG steps (legality check off: boards are known-legal here) against a baseline forward
    under no_grad, and their ratio (goal <= 1.5).
Ratios are given from wall time and from process CPU time (`*_cpu`, steadier when the machine is shared).
Usage: python benchmarks/model_speed.py [--configs cpu_small default] [--batch-sizes 1 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from snake_world_eqm import SnakePolicyBaseline, SnakePolicyBaselineConfig, SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.game import batched_successors, encode_observation, new_game
from snake_world_eqm.provenance import with_provenance

CONFIGS = {"cpu_small": SnakeWorldEqMConfig.cpu_small, "default": SnakeWorldEqMConfig}


def make_batch(batch: int, size: int, seed: int = 0, max_length: int = 7) -> dict[str, torch.Tensor]:
    """Boards with snakes of length 1..max_length, their what-if successors and a random action each."""
    rng = np.random.default_rng(seed)
    obs = np.stack([encode_observation(new_game(size, size, rng=rng, initial_length=int(rng.integers(1, max_length + 1))))
                    for _ in range(batch)])
    per_action = torch.from_numpy(batched_successors(obs, rng)[0]).long()
    action = torch.from_numpy(rng.integers(0, 4, batch))
    return dict(state=torch.from_numpy(obs).long(), action=action,
                next_state=per_action[torch.arange(batch), action], next_state_per_action=per_action)


def median_seconds(fn, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median wall and process-CPU seconds of `fn`. On a shared machine CPU time is the steadier measure."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def train_step(model, optimizer, inputs):
    def run():
        loss = model(**inputs).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return run


def sampler(model, state):
    generator = torch.Generator().manual_seed(0)
    return lambda: model.sample(state, num_steps=10, generator=generator, validate=False)


def forward_pass(model, state):
    def run():
        with torch.no_grad():
            model(state)
    return run


def bench_config(name: str, batch_sizes: list[int], repeats: int) -> dict:
    torch.manual_seed(0)
    eqm_config = CONFIGS[name]()
    eqm = SnakeWorldEqM(eqm_config)
    baseline = SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(eqm_config))
    result = {"config": name, "eqm_parameters": eqm.num_parameters(), "baseline_parameters": baseline.num_parameters(),
              "batches": {}}
    size = eqm_config.board_height
    for batch in batch_sizes:
        data = make_batch(batch, size)
        eqm.train()
        baseline.train()
        eqm_train = median_seconds(train_step(eqm, torch.optim.AdamW(eqm.parameters()), data), repeats)
        bc_train = median_seconds(
            train_step(baseline, torch.optim.AdamW(baseline.parameters()), {"state": data["state"], "action": data["action"]}),
            repeats,
        )
        eqm.eval()
        baseline.eval()
        sample = median_seconds(sampler(eqm, data["state"]), repeats)
        forward = median_seconds(forward_pass(baseline, data["state"]), repeats)
        result["batches"][str(batch)] = {
            "eqm_train_step_s": eqm_train[0], "baseline_train_step_s": bc_train[0],
            "train_ratio": eqm_train[0] / bc_train[0], "train_ratio_cpu": eqm_train[1] / bc_train[1],
            "train_ratio_goal": 1.3,
            "eqm_sample10_s": sample[0], "baseline_forward_s": forward[0],
            "sample_ratio": sample[0] / forward[0], "sample_ratio_cpu": sample[1] / forward[1],
            "sample_ratio_goal": 1.5,
            "eqm_train_samples_per_s": batch / eqm_train[0], "baseline_train_samples_per_s": batch / bc_train[0],
        }
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["cpu_small", "default"], choices=sorted(CONFIGS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = {
        "benchmark": "model_speed", "torch": torch.__version__, "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "note": "ratios are within one run; sample() uses validate=False (legality checked elsewhere)",
        "results": [bench_config(name, args.batch_sizes, args.repeats) for name in args.configs],
    }
    print(json.dumps(with_provenance(report), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
