"""Do the EqM-native signals know when the model is wrong? AUROC per signal and case, as JSON (issue #30).

    python benchmarks/uncertainty_signals.py --output docs/results/uncertainty_signals.json

Signals (snake_world_eqm/evaluation/signals.py; higher = less sure), read from the descent the EqM agent
plays (from the origin): the final gradient norm, its mean along the descent, the steps an adaptive descent
needs, the implicit-energy margin of the sampled action over the other held actions (line integral of the
field), whether the lowest-energy action differs from the sampled one, and the disagreement of 4 noise draws.

Cases, each with its number of positives:
  * fatal decisions: states the EqM agent (from noise) visits in its own 10x10 games; positive when the move
    the agent plays there loses the game within k = 10 moves under the A* expert's continuation;
  * action errors: fresh route-teacher rows; positive when the sampled action differs from the teacher's;
  * corrupted boards: real rows against illegal copies (a second food, a second head, a broken body);
  * unseen sizes (the multi-size checkpoint): rows of the sizes it never trained on against trained sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from snake_world_eqm import PRETRAINED_10X10, PRETRAINED_MULTISIZE
from snake_world_eqm.agents.base import sample_model
from snake_world_eqm.evaluation.by_size import evaluation_rows
from snake_world_eqm.evaluation.evaluate import (
    EvalConfig,
    corrupt_boards,
    fatal_labels,
    run_sampler,
    visited_states,
)
from snake_world_eqm.evaluation.metrics import auroc
from snake_world_eqm.evaluation.signals import SIGNALS, descent_signals
from snake_world_eqm.pretrained import load_model
from snake_world_eqm.provenance import with_provenance

NOISE_DRAWS = 4


def noise_disagreement(model, boards: np.ndarray, seed: int, batch_size: int = 256) -> np.ndarray:
    """1 - the share of `NOISE_DRAWS` free descents from EqM's noise that agree with their majority."""
    generator = torch.Generator().manual_seed(seed)
    votes = np.zeros((len(boards), 4))
    for _ in range(NOISE_DRAWS):
        for start in range(0, len(boards), batch_size):
            chunk = boards[start:start + batch_size]
            action = sample_model(model, chunk, generator=generator, init_scale=1.0).action.cpu().numpy()
            votes[np.arange(start, start + len(chunk)), action] += 1
    return 1.0 - votes.max(axis=1) / NOISE_DRAWS


def all_signals(model, boards: np.ndarray, seed: int, threshold: float | None = None) -> dict[str, np.ndarray]:
    signals = descent_signals(model, boards, adaptive_threshold=threshold)
    signals["noise_disagreement"] = noise_disagreement(model, boards, seed)
    return signals


def scored(signals: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    names = (*SIGNALS, "noise_disagreement")
    return {"positives": int(labels.sum()), "negatives": int((~labels).sum()),
            "auroc": {name: round(auroc(signals[name], labels), 4) for name in names}}


def fatal_case(model, games: int, seed: int, max_states: int) -> dict:
    cfg = EvalConfig(fatal_games=games, play_seed=seed, sample_seed=0)
    boards = visited_states(model, 10, 10, cfg)
    origin_actions = run_sampler(model, boards, 512, seed=0, init_scale=0.0)["action"].astype(np.int64)  # batched
    fatal = fatal_labels(boards, origin_actions, cfg.fatal_horizon, seed=0, expert="astar")
    rng = np.random.default_rng(0)  # every fatal state plus a uniform sample of the others: AUROC unbiased
    others = np.flatnonzero(~fatal)
    others = np.sort(rng.choice(others, size=min(others.size, max(max_states - int(fatal.sum()), 0)), replace=False))
    kept = np.sort(np.concatenate([np.flatnonzero(fatal), others]))
    signals = all_signals(model, boards[kept], seed=1)
    result = scored(signals, fatal[kept])
    result.update({"states_visited": int(len(boards)), "fatal_visited": int(fatal.sum()), "games_per_start": games,
                   "k": cfg.fatal_horizon, "adaptive_threshold": float(signals["adaptive_threshold"])})
    return result


def action_and_corruption_cases(model, rows: int, seed: int) -> tuple[dict, dict]:
    data = evaluation_rows(10, 10, rows, seed, expert="route")
    real = data["state"]
    signals = all_signals(model, real, seed=2)
    threshold = float(signals["adaptive_threshold"])
    action = scored(signals, signals["action"].astype(np.int64) != data["action"])
    action["adaptive_threshold"] = threshold
    corrupted, kinds = corrupt_boards(real, seed)
    fake = all_signals(model, corrupted, seed=3, threshold=threshold)  # the real boards' threshold for both
    both = {name: np.concatenate([signals[name], fake[name]]) for name in (*SIGNALS, "noise_disagreement")}
    labels = np.concatenate([np.zeros(len(real), bool), np.ones(len(corrupted), bool)])
    corruption = scored(both, labels)
    corruption["by_kind_positives"] = {name: int((kinds == index).sum())
                                       for index, name in enumerate(("extra_food", "extra_head", "broken_body"))}
    return action, corruption


def unseen_size_case(model, seen: list[str], unseen: list[str], rows: int, seed: int) -> dict:
    parts, labels, thresholds = [], [], {}
    for name in (*seen, *unseen):
        height, width = (int(v) for v in name.split("x"))
        boards = evaluation_rows(height, width, rows, seed, expert="route")["state"]
        signals = all_signals(model, boards, seed=4)
        thresholds[name] = float(signals["adaptive_threshold"])
        parts.append(signals)
        labels.append(np.full(len(boards), name in unseen))
    # One threshold for every size would be fairer for adaptive_steps; the per-size medians are reported.
    both = {key: np.concatenate([part[key] for part in parts]) for key in (*SIGNALS, "noise_disagreement")}
    result = scored(both, np.concatenate(labels))
    result.update({"seen_sizes": seen, "unseen_sizes": unseen, "rows_per_size": rows,
                   "adaptive_threshold_per_size": thresholds})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(PRETRAINED_10X10), help="10x10 model for the first three cases")
    parser.add_argument("--multisize-model", default=str(PRETRAINED_MULTISIZE))
    parser.add_argument("--fatal-games", type=int, default=32, help="EqM-agent games per start kind")
    parser.add_argument("--fatal-max-states", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=4000, help="route-teacher rows for action errors and corruption")
    parser.add_argument("--size-rows", type=int, default=500)
    parser.add_argument("--seen", nargs="+", default=["8x8", "10x10", "12x12"])
    parser.add_argument("--unseen", nargs="+", default=["7x7", "9x9", "11x11", "13x13"])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started, load = time.perf_counter(), os.getloadavg()
    model = load_model(args.model).eval()
    result = {"benchmark": "uncertainty_signals", "model": args.model, "multisize_model": args.multisize_model}
    result["fatal_decisions"] = fatal_case(model, args.fatal_games, 1000, args.fatal_max_states)
    result["action_errors"], result["corrupted_boards"] = action_and_corruption_cases(model, args.rows, 10007)
    result["unseen_sizes"] = unseen_size_case(load_model(args.multisize_model).eval(), args.seen, args.unseen,
                                              args.size_rows, 10007)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_average_before"], result["load_average_after"] = load, os.getloadavg()
    text = json.dumps(with_provenance(result), indent=1)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
