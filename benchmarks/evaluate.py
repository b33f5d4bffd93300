"""Reproduce every evaluation number the model card quotes, printed as JSON.

    python benchmarks/evaluate.py --model PATH --dataset PATH [--baseline PATH] [evaluate flags...]

wraps `snake_world_eqm.evaluation.evaluate` exactly as `snake-eqm evaluate` does. With
`--random-model` it measures the evaluation itself on a randomly initialised `cpu_small` model
and a freshly generated small dataset (for runtime when no trained model exists; its quality
numbers mean nothing). The runtime of each part is under config.seconds_by_part.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from snake_world_eqm.evaluation.cli import build_parser as evaluate_parser
from snake_world_eqm.evaluation.cli import config_from_args
from snake_world_eqm.provenance import with_provenance


def random_model_and_dataset(size: int, rows: int, seed: int):
    """A random-init cpu_small model, its baseline twin, and a small generated dataset."""
    import torch

    from snake_world_eqm.configuration_snake_world_eqm import SnakePolicyBaselineConfig, SnakeWorldEqMConfig
    from snake_world_eqm.data import GenerationConfig, generate_dataset_dict
    from snake_world_eqm.modeling_snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM

    torch.manual_seed(seed)
    config = SnakeWorldEqMConfig.cpu_small(board_height=size, board_width=size)
    model = SnakeWorldEqM(config).eval()
    baseline = SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(config)).eval()
    generation = GenerationConfig(num_samples=rows, height=size, width=size, seed=seed,
                                  split_fractions=(0.5, 0.1, 0.4))
    dataset = generate_dataset_dict(generation, progress=False)
    return model, baseline, dataset["test"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--random-model", action="store_true")
    parser.add_argument("--board-size", type=int, default=10)
    parser.add_argument("--random-rows", type=int, default=5000, help="generated rows (random-model mode)")
    known, rest = parser.parse_known_args(argv)
    if known.random_model:
        rest = ["--model", "random", "--dataset", "generated", "--baseline", "random"] + rest
    args = evaluate_parser().parse_args(rest)
    cfg = config_from_args(args, argv)
    __import__("torch").set_flush_denormal(True)  # as the evaluate CLI does: subnormals slow CPU convs
    cfg.command = "python benchmarks/evaluate.py " + " ".join(argv)
    started = time.perf_counter()
    from snake_world_eqm.evaluation.evaluate import evaluate, json_ready

    if known.random_model:
        model, baseline, split = random_model_and_dataset(known.board_size, known.random_rows, args.seed)
    else:
        from snake_world_eqm.data import load_snake_dataset
        from snake_world_eqm.pretrained import load_model

        # The one checkpoint loader, called as `snake-eqm evaluate` calls it.
        model = load_model(args.model, kind="eqm", device=args.device)
        baseline = None if args.baseline is None else load_model(args.baseline, kind="baseline", device=args.device)
        split = load_snake_dataset(args.dataset, split=args.split)
    if cfg.expert == "auto":  # the teacher named in the dataset's card, as `snake-eqm evaluate` resolves it
        from snake_world_eqm.data.loading import dataset_expert

        cfg.expert = "astar" if known.random_model else dataset_expert([args.dataset])  # generated rows: astar
    if baseline is None:
        cfg.agents = tuple(name for name in cfg.agents if name != "baseline")
    setup_seconds = time.perf_counter() - started
    result = evaluate(model, split, baseline=baseline, cfg=cfg, progress=not args.no_progress)
    result["uncertainty"].pop("grad_norm_values", None)
    result["config"].update({"benchmark": "evaluate", "random_model": known.random_model,
                             "setup_seconds": round(setup_seconds, 1),
                             "seconds": round(time.perf_counter() - started - setup_seconds, 1),
                             "torch_threads": __import__("torch").get_num_threads()})
    result = json_ready(with_provenance(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2, allow_nan=False)
    print(json.dumps(result, indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
