"""Action probabilities of a world model against the teacher's actions on held-out rows, as JSON (+ a plot).

Compares the softmax of the action block the sampler settles on from the origin (what the app showed) with
smoothed votes of K noise draws, the smoothing fitted on one half of the rows and scored on the other:
expected calibration error, negative log-likelihood, reliability bins, the spread of the top probability,
and the AUROC of (1 - top probability) for the model's own action errors.

    python benchmarks/calibration.py --rows 6000 --draws 8 --output docs/results/calibration_10x10.json \
        --plot docs/results/plots/calibration_10x10.png
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped 10x10 checkpoint)")
    parser.add_argument("--expert", default="route", help="the teacher whose actions are the labels")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--draws", type=int, default=8, help="noise draws per board (K)")
    parser.add_argument("--seed", type=int, default=20_000, help="data seed (not a training seed)")
    parser.add_argument("--output", default=None)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from snake_world_eqm.agents.base import sample_model
    from snake_world_eqm.data import GenerationConfig, generate_dataset_dict
    from snake_world_eqm.evaluation import calibration
    from snake_world_eqm.evaluation.metrics import auroc
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import with_provenance, write_json
    from snake_world_eqm.shipped import PRETRAINED_10X10

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model = load_model(args.model or PRETRAINED_10X10)
    height, width = model.config.board_height, model.config.board_width
    data = generate_dataset_dict(GenerationConfig(num_samples=args.rows, height=height, width=width, seed=args.seed,
                                                  expert=args.expert, one_cell_fraction=0.5), progress=False)
    rows = data["train"].select_columns(["state", "action"]).with_format("numpy")[: args.rows]
    boards, labels = rows["state"].astype(np.int8), rows["action"].astype(np.int64)
    generator = torch.Generator().manual_seed(0)

    def in_chunks(fn):
        return np.concatenate([fn(boards[i:i + 512]) for i in range(0, len(boards), 512)])

    origin_block = in_chunks(lambda b: sample_model(model, b, generator=generator, init_scale=0.0)
                             .action_logits.detach().float().numpy())
    votes = np.zeros((len(boards), 4))
    for _ in range(args.draws):
        drawn = in_chunks(lambda b: sample_model(model, b, generator=generator, init_scale=1.0).action.numpy())
        votes[np.arange(len(boards)), drawn] += 1

    half = np.arange(len(labels)) < len(labels) // 2
    smoothing = calibration.fit_vote_smoothing(votes[half], labels[half])
    held_out = ~half
    candidates = {
        "origin_softmax": torch.softmax(torch.as_tensor(origin_block), dim=-1).numpy(),
        "votes": calibration.vote_probabilities(votes, smoothing),
    }
    result = {"model": str(args.model or "shipped 10x10"), "expert": args.expert, "rows": int(len(labels)),
              "held_out_rows": int(held_out.sum()), "draws": args.draws, "fitted_smoothing": smoothing}
    for name, probs in candidates.items():
        p, y = probs[held_out], labels[held_out]
        top = p.max(axis=1)
        wrong = p.argmax(axis=1) != y
        result[name] = {
            "ece": calibration.expected_calibration_error(p, y),
            "nll": calibration.negative_log_likelihood(p, y),
            "accuracy": float((~wrong).mean()),
            "top_probability_percentiles": {str(q): float(np.percentile(top, q)) for q in (1, 5, 25, 50, 75, 95)},
            "top_probability_distinct_values": int(np.unique(top.round(6)).size),
            "share_top_probability_below_0.9": float((top < 0.9).mean()),
            "error_auroc": auroc(1.0 - top, wrong), "errors": int(wrong.sum()),
            "reliability": calibration.reliability_bins(p, y),
        }
    if args.plot:
        _plot(result, args.plot)
    if args.output:
        write_json(args.output, result)
    print(json.dumps(with_provenance(result), indent=2))
    return 0


def _plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name, label in (("origin_softmax", "softmax of the settled action block"),
                        ("votes", f"votes of {result['draws']} noise draws (smoothed)")):
        bins = [row for row in result[name]["reliability"] if row["rows"]]
        axis.plot([row["confidence"] for row in bins], [row["accuracy"] for row in bins], marker="o",
                  label=f"{label}: ECE {result[name]['ece']:.3f}")
    axis.set_xlabel("top action probability")
    axis.set_ylabel("fraction where it is the teacher's action")
    axis.set_title(f"Reliability on {result['held_out_rows']} held-out rows")
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
