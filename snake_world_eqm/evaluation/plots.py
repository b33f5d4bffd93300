"""PNG figures of an evaluation result (matplotlib, Agg backend): one function per claim."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_accuracy_vs_steps(result: dict, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(5, 3.5))
    points = result["fixed_steps"]
    axis.plot([p["num_steps"] for p in points], [100 * p["action_accuracy"] for p in points], "o-")
    axis.set_xscale("log")
    axis.set_xlabel("sampling steps (fixed)")
    axis.set_ylabel("action accuracy (%)")
    axis.set_title("Accuracy vs sampling steps")
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_adaptive_tradeoff(result: dict, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(5, 3.5))
    fixed = result["fixed_steps"]
    axis.plot([p["mean_field_evaluations"] for p in fixed], [100 * p["action_accuracy"] for p in fixed],
              "o-", label="fixed steps")
    adaptive = sorted(result["adaptive"], key=lambda p: p["mean_field_evaluations"])
    if adaptive:
        axis.plot([p["mean_field_evaluations"] for p in adaptive],
                  [100 * p["action_accuracy"] for p in adaptive], "s--", label="adaptive threshold")
        for point in adaptive:
            axis.annotate(f"{point['threshold']:.3g}", (point["mean_field_evaluations"],
                                                         100 * point["action_accuracy"]), fontsize=7)
    axis.set_xlabel("mean field evaluations per sample")
    axis.set_ylabel("action accuracy (%)")
    axis.set_title("Adaptive compute trade-off")
    axis.legend()
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_grad_norm_histograms(result: dict, path: Path) -> Path:
    values = result["uncertainty"]["grad_norm_values"]
    right, wrong = np.asarray(values["right"]), np.asarray(values["wrong"])
    figure, axis = plt.subplots(figsize=(5, 3.5))
    both = np.concatenate([right, wrong]) if right.size + wrong.size else np.zeros(1)
    bins = np.linspace(both.min(), both.max() + 1e-9, 40)
    if right.size:
        axis.hist(right, bins=bins, alpha=0.6, density=True, label=f"right action (n={right.size})")
    if wrong.size:
        axis.hist(wrong, bins=bins, alpha=0.6, density=True, label=f"wrong action (n={wrong.size})")
    auroc = result["uncertainty"]["grad_norm"]["action_error_auroc"]
    axis.set_title(f"Final gradient norm, AUROC for errors = {auroc:.3f}")
    axis.set_xlabel("gradient norm at the end of sampling")
    axis.set_ylabel("density")
    axis.legend()
    return _save(figure, path)


def plot_apples_per_agent(result: dict, path: Path) -> Path:
    names = list(result["play"])
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    data = [result["play"][name]["apples_per_game"] for name in names]
    axis.boxplot(data, showmeans=True)
    axis.set_xticks(range(1, len(names) + 1), names)
    axis.set_ylabel("apples per game")
    games = result["play"][names[0]]["games"] if names else 0
    axis.set_title(f"Closed-loop play, {games} seeded games")
    axis.grid(alpha=0.3, axis="y")
    return _save(figure, path)


def write_all_plots(result: dict, directory: str | Path) -> list[Path]:
    """Write every figure the result supports into `directory`; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if result.get("fixed_steps"):
        written.append(plot_accuracy_vs_steps(result, directory / "accuracy_vs_steps.png"))
        written.append(plot_adaptive_tradeoff(result, directory / "adaptive_tradeoff.png"))
    if result.get("uncertainty"):
        written.append(plot_grad_norm_histograms(result, directory / "grad_norm_histograms.png"))
    if result.get("play"):
        written.append(plot_apples_per_agent(result, directory / "apples_per_agent.png"))
    return written


def plot_training_curves(train_log: str | Path, path: str | Path) -> Path:
    """Loss terms against steps, and the periodic validation metrics, from a run's train_log.jsonl."""
    import json

    rows = [json.loads(line) for line in Path(train_log).read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    figure, (loss_axis, eval_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    loss_keys = sorted({k for r in train for k in r if k.startswith("train/loss")})
    for key in loss_keys:
        points = [(r["step"], r[key]) for r in train if key in r]
        loss_axis.plot(*zip(*points), label=key.removeprefix("train/"))
    loss_axis.set_yscale("log")
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_title("training losses")
    eval_keys = [k for k in ("action_accuracy", "next_board_exact", "whatif_exact.mean", "validity", "coherence")
                 if any(k in r for r in evals)]
    for key in eval_keys:
        points = [(r["step"], 100 * r[key]) for r in evals if key in r]
        eval_axis.plot(*zip(*points), "o-", label=key)
    eval_axis.set_xlabel("optimizer step")
    eval_axis.set_ylabel("%")
    eval_axis.set_title("validation")
    for axis in (loss_axis, eval_axis):
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
    return _save(figure, Path(path))
