"""PNG figures of an evaluation result (matplotlib, Agg backend): one function per claim."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

# Text on a faint white box stays readable where it crosses a line.
_LABEL_BOX = {"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_accuracy_vs_steps(result: dict, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(5, 3.5))
    points = result["fixed_steps"]
    steps = [p["num_steps"] for p in points]
    axis.plot(steps, [100 * p["action_accuracy"] for p in points], "o-")
    axis.set_xscale("log")
    axis.set_xticks(steps, [str(step) for step in steps])  # the step counts measured, not powers of ten
    axis.minorticks_off()
    axis.set_xlabel("sampling steps (fixed, log scale)")
    axis.set_ylabel("action accuracy vs expert (%)")
    axis.set_title("EqM action accuracy vs sampling steps")
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_adaptive_tradeoff(result: dict, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    fixed = result["fixed_steps"]
    axis.plot([p["mean_field_evaluations"] for p in fixed], [100 * p["action_accuracy"] for p in fixed],
              "o-", label="fixed number of steps")
    adaptive = sorted(result["adaptive"], key=lambda p: p["mean_field_evaluations"])
    if adaptive:
        axis.plot([p["mean_field_evaluations"] for p in adaptive],
                  [100 * p["action_accuracy"] for p in adaptive], "s--",
                  label="adaptive: stop once ‖f‖ < threshold\n(threshold written by each square)")
        accuracies = [100 * p["action_accuracy"] for p in adaptive]
        middle = (max(accuracies) + min(accuracies)) / 2
        for index, (point, accuracy) in enumerate(zip(adaptive, accuracies)):
            # Into the empty side of the plot, staggered: neighbouring thresholds often share an accuracy.
            below = accuracy >= middle
            offset = -(12 + 10 * (index % 2)) if below else 8
            axis.annotate(f"‖f‖<{point['threshold']:.3g}", (point["mean_field_evaluations"], accuracy),
                          xytext=(0, offset), textcoords="offset points", fontsize=7, ha="center",
                          color="tab:orange", bbox=_LABEL_BOX)
    axis.set_xlabel("mean field evaluations per sample")
    axis.set_ylabel("action accuracy vs expert (%)")
    axis.set_title("Adaptive compute trade-off")
    axis.legend(fontsize=8)
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
    axis.set_title(f"Final gradient norm of right and wrong actions\n{error_detection_text(auroc)}", fontsize=10)
    axis.set_xlabel("gradient norm at the end of sampling")
    axis.set_ylabel("density")
    axis.legend()
    return _save(figure, path)


def error_detection_text(auroc: float | None) -> str:
    """What the histogram's AUROC measures: how well a high final gradient norm flags the model's own wrong
    actions (vs the expert). 0.5 is chance; below it, wrong actions tend to end with the *lower* norm."""
    if auroc is None or not np.isfinite(auroc):
        return "error-detection AUROC undefined (no right or no wrong actions)"
    return f"error-detection AUROC {auroc:.3f} (0.5 = chance, lower = worse)"


def plot_apples_per_agent(result: dict, path: Path) -> Path:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = list(result["play"])
    figure, axis = plt.subplots(figsize=(6.5, 4))
    data = [result["play"][name]["apples_per_game"] for name in names]
    boxes = axis.boxplot(data, showmeans=True)
    axis.set_xticks(range(1, len(names) + 1), names)
    for position, values in enumerate(data, start=1):
        if len(values):
            mean = float(np.mean(values))
            axis.annotate(f"{mean:.1f}", (position, mean), xytext=(7, 0), textcoords="offset points",
                          fontsize=7, va="center", bbox=_LABEL_BOX)
    axis.set_ylabel("apples per game")
    axis.set_title(_play_title(result["play"][names[0]]) if names else "Closed-loop play")
    axis.grid(alpha=0.3, axis="y")
    legend = [Line2D([], [], **_style(boxes["means"]), linestyle="none", label="mean (value beside it)"),
              Line2D([], [], **_style(boxes["medians"], line=True), label="median"),
              Patch(facecolor="none", edgecolor="black", label="middle half of the games"),
              Line2D([], [], color="black", label="whiskers: farthest game\nwithin 1.5 box heights"),
              Line2D([], [], **_style(boxes["fliers"]), linestyle="none", label="outlier games")]
    axis.legend(handles=legend, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(figure, path)


def _style(artists: list, line: bool = False) -> dict:
    """Colour and marker of the boxplot's own artists, so the legend matches what is drawn."""
    if not artists:
        return {"color": "black"}
    first = artists[0]
    if line:
        return {"color": first.get_color(), "linewidth": first.get_linewidth()}
    return {"marker": first.get_marker(), "markerfacecolor": first.get_markerfacecolor(),
            "markeredgecolor": first.get_markeredgecolor(), "color": first.get_color()}


def _play_title(stats: dict) -> str:
    by_start = stats.get("by_start")
    if by_start:
        starts = " and ".join(f"{length}-cell" for length in by_start)
        seeds = next(iter(by_start.values()))["games"]
        return f"Closed-loop play: {stats['games']} games ({seeds} seeds x {starts} starts)"
    return f"Closed-loop play, {stats['games']} seeded games"


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
    # Both panels share the step axis, so a run validated once shows one point in place, not a stretched axis.
    figure, (loss_axis, eval_axis) = plt.subplots(1, 2, figsize=(10, 3.5), sharex=True)
    loss_keys = sorted({k for r in train for k in r if k.startswith("train/loss")})
    for key in loss_keys:
        points = [(r["step"], r[key]) for r in train if key in r]
        loss_axis.plot(*zip(*points), label=key.removeprefix("train/"))
    loss_axis.set_yscale("log")
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_title("training losses")
    eval_keys = [k for k in ("action_accuracy", "next_board_exact", "whatif_exact.mean", "validity", "coherence")
                 if any(k in r for r in evals)]
    values = []
    for key in eval_keys:
        points = [(r["step"], 100 * r[key]) for r in evals if key in r]
        eval_axis.plot(*zip(*points), "o-", label=key)
        values += [value for _, value in points]
        if len(points) == 1:
            eval_axis.annotate(f"{points[0][1]:.1f}", points[0], xytext=(5, 0), textcoords="offset points",
                               fontsize=7, va="center")
    if values and max(values) - min(values) < 2:  # one point or a flat line: a readable band, not ±0.05%
        middle = (max(values) + min(values)) / 2
        eval_axis.set_ylim(max(0.0, middle - 5), min(100.5, middle + 5))
    eval_axis.set_xlabel("optimizer step")
    eval_axis.set_ylabel("validation metric (%)")
    eval_axis.set_title(f"validation ({len(evals)} evaluation{'s' if len(evals) != 1 else ''})")
    steps = [r["step"] for r in train + evals]
    if steps:
        loss_axis.set_xlim(0, max(steps) * 1.08 + 1)  # room for the value written beside a last point
    for axis in (loss_axis, eval_axis):
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
    eval_axis.tick_params(labelbottom=True)
    return _save(figure, Path(path))
