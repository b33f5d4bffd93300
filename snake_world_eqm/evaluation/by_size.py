"""Per-board-size evaluation: one-step metrics and closed-loop play on every size, seen in training or not.

What it measures and how: `by_size_args.DESCRIPTION` (the `--help` text).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from snake_world_eqm.agents.simple import EqMAgent, ExpertAgent
from snake_world_eqm.evaluation.by_size_args import DEFAULT_SIZES, build_parser  # noqa: E402  (flags: torch-free)
from snake_world_eqm.evaluation.closed_loop import play_both_starts
from snake_world_eqm.evaluation.evaluate import EvalConfig, held_out_metrics, json_ready
from snake_world_eqm.game.state import parse_board_size, size_name, sort_sizes
from snake_world_eqm.pretrained import load_model

EVAL_DATA_SEED = 10_007  # generation seed of the evaluation episodes (training data uses other seeds)
# Per-game lists are bulky; the by-size JSON keeps the summary numbers only.
_PER_GAME_KEYS = ("apples_per_game", "steps_per_game", "final_length_per_game", "end_cause_per_game")


@dataclass
class SizeEvalConfig:
    sizes: tuple[str, ...] = DEFAULT_SIZES
    seen_sizes: tuple[str, ...] = ()
    rows: int = 500  # one-step rows per size
    games: int = 20  # games per size and start kind (three-cell and one-cell snakes)
    play_seed: int = 1000
    sample_seed: int = 0
    data_seed: int = EVAL_DATA_SEED
    batch_size: int = 512
    min_cap: int = 2000  # step cap per game: max(min_cap, 20 x cells)
    expert_cache: str | None = None  # JSON of expert play per size: the expert does not depend on the model
    command: str = ""
    extra: dict = field(default_factory=dict)


def play_cap(height: int, width: int, min_cap: int = 2000) -> int:
    return max(min_cap, 20 * height * width)


EVAL_GAMES = 16  # parallel expert games whose steps the one-step rows are drawn from


def evaluation_rows(height: int, width: int, num_rows: int, seed: int, games: int = EVAL_GAMES) -> dict[str, np.ndarray]:
    """`num_rows` rows drawn uniformly from about one whole expert episode in each of `EVAL_GAMES` games on an
    HxW board (so long snakes are measured as often as the training data holds them), as `held_out_metrics`
    reads them."""
    from snake_world_eqm.data.generate import GenerationConfig, chunk_rows

    generated = max(num_rows, games * 3 * height * width)  # an A* episode lasts about 3 x cells steps
    config = GenerationConfig(num_samples=generated, height=height, width=width, seed=seed,
                              split_fractions=(1.0, 0.0, 0.0), parallel_games=games, rows_per_chunk=generated)
    rows = chunk_rows(config, 0)
    chosen = np.sort(np.random.default_rng(seed).choice(generated, size=num_rows, replace=False))
    names = ("state", "action", "next_state", "event", "next_state_per_action", "event_per_action")
    return {name: np.asarray(rows[name])[chosen].astype(np.int64) for name in names}


def check_model_takes(model, height: int, width: int) -> None:
    """One-line error when the model cannot run on HxW (a fixed-size model, or a side beyond 32)."""
    config = model.config
    if getattr(config, "fixed_board_size", True) and (height, width) != (config.board_height, config.board_width):
        raise ValueError(f"the model is fixed to {config.board_height}x{config.board_width} boards "
                         f"(fixed_board_size=True); it cannot be evaluated on {height}x{width}")


def evaluate_size(model, height: int, width: int, cfg: SizeEvalConfig, progress: bool = False) -> dict:
    """One-step metrics and the EqM agent's play on one board size (the expert's play: `add_expert_play`)."""
    check_model_takes(model, height, width)
    started = time.perf_counter()
    rows = evaluation_rows(height, width, cfg.rows, cfg.data_seed)
    one_step, _ = held_out_metrics(model, rows, EvalConfig(batch_size=cfg.batch_size, sample_seed=cfg.sample_seed),
                                   progress=progress)
    cap = play_cap(height, width, cfg.min_cap)
    name = size_name(height, width)
    return {
        "size": name,
        "height": height,
        "width": width,
        "cells": height * width,
        "seen": name in cfg.seen_sizes,
        "action_accuracy": one_step["action_accuracy"],
        "next_board_exact": one_step["next_board_exact"],
        "whatif_exact": one_step["whatif_exact"]["mean"],
        "validity": one_step["validity"],
        "coherence": one_step["coherence"],
        "rows": one_step["rows"],
        "eqm_mean_apples": None,
        "expert_mean_apples": None,
        "apples_ratio": None,
        "max_steps": cap,
        "play": {"eqm": _play(EqMAgent(model, seed=cfg.sample_seed), height, width, cap, cfg, progress)},
        "seconds": round(time.perf_counter() - started, 1),
    }


def add_expert_play(entry: dict, cfg: SizeEvalConfig, progress: bool = False) -> dict:
    """The expert's play on the same games, and the EqM agent's share of its apples."""
    entry["play"]["expert"] = expert_play(entry["height"], entry["width"], entry["max_steps"], cfg, progress)
    entry["eqm_mean_apples"] = entry["play"]["eqm"]["mean_apples"]
    entry["expert_mean_apples"] = expert = entry["play"]["expert"]["mean_apples"]
    entry["apples_ratio"] = entry["eqm_mean_apples"] / expert if expert else None
    return entry


def _play(agent, height: int, width: int, cap: int, cfg: SizeEvalConfig, progress: bool) -> dict:
    summary = play_both_starts(agent, height, width, cfg.games, cfg.play_seed, cap, progress=progress)
    for start in summary.get("by_start", {}).values():
        for key in _PER_GAME_KEYS:
            start.pop(key, None)
    return {key: value for key, value in summary.items() if key not in _PER_GAME_KEYS}


def expert_play(height: int, width: int, cap: int, cfg: SizeEvalConfig, progress: bool = False) -> dict:
    """The A* expert's play on the same seeded games; read from / added to `cfg.expert_cache` when set
    (keyed by everything the games depend on), since it is the same for every model."""
    key = f"{size_name(height, width)} games={cfg.games} seed={cfg.play_seed} cap={cap}"
    cache = Path(cfg.expert_cache) if cfg.expert_cache else None
    stored = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    if key in stored:
        return stored[key]
    summary = json_ready(_play(ExpertAgent(), height, width, cap, cfg, progress))
    if cache is not None:
        stored = json.loads(cache.read_text()) if cache.is_file() else {}
        stored[key] = summary
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored, indent=1) + "\n")
    return summary


def evaluate_sizes(model, cfg: SizeEvalConfig, progress: bool = True) -> dict:
    """`evaluate_size` for every size of `cfg.sizes` (all checked first), in size order."""
    sizes = sort_sizes(cfg.sizes)
    shapes = [parse_board_size(name) for name in sizes]
    for height, width in shapes:
        check_model_takes(model, height, width)
    model.eval()
    results = []
    for height, width in shapes:
        if progress:
            print(f"evaluating {size_name(height, width)} ...", file=sys.stderr)
        with torch.no_grad():
            results.append(evaluate_size(model, height, width, cfg, progress=False))
    # The expert last: its games are the same for every model, so a cache (or a parallel --expert-only run) has them.
    for entry in results:
        add_expert_play(entry, cfg)
    return {"sizes": results, "config": asdict(cfg)}


# ---- acceptance, table, plot -----------------------------------------------------------------------------

SEEN_TARGETS = {"next_board_exact": 0.99, "action_accuracy": 0.95, "apples_ratio": 0.70}
UNSEEN_TARGETS = {"next_board_exact": 0.97, "whatif_exact": 0.97, "apples_ratio": 0.60}


def check_targets(entry: dict) -> dict[str, bool]:
    """Which of the issue's acceptance targets this size meets (seen and unseen sizes have different ones)."""
    targets = SEEN_TARGETS if entry["seen"] else UNSEEN_TARGETS
    return {name: entry[name] is not None and entry[name] >= bound for name, bound in targets.items()}


def markdown_table(result: dict) -> str:
    header = ("size", "seen", "next-board exact", "what-if exact", "action acc.", "validity",
              "EqM apples", "expert apples", "EqM / expert", "cap", "targets met")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in result["sizes"]:
        met = check_targets(entry)
        ratio = "n/a" if entry["apples_ratio"] is None else f"{100 * entry['apples_ratio']:.0f}%"
        lines.append("| " + " | ".join([
            entry["size"], "yes" if entry["seen"] else "**no**",
            f"{100 * entry['next_board_exact']:.1f}%", f"{100 * entry['whatif_exact']:.1f}%",
            f"{100 * entry['action_accuracy']:.1f}%", f"{100 * entry['validity']:.1f}%",
            f"{entry['eqm_mean_apples']:.1f}", f"{entry['expert_mean_apples']:.1f}", ratio, str(entry["max_steps"]),
            f"{sum(met.values())}/{len(met)}" + ("" if all(met.values()) else " (missed: " + ", ".join(
                name for name, ok in met.items() if not ok) + ")"),
        ]) + " |")
    cfg = result["config"]
    lines.append("")
    lines.append(f"{cfg['rows']} one-step rows per size (fresh expert episodes, data seed {cfg['data_seed']}); "
                 f"{cfg['games']} games per size from each start (three-cell and one-cell snakes, seeds "
                 f"{cfg['play_seed']}..{cfg['play_seed'] + cfg['games'] - 1}), cap max({cfg['min_cap']}, 20 x cells).")
    return "\n".join(lines) + "\n"


def plot_by_size(result: dict, path: str | Path) -> Path:
    """Four panels, metric against board cells; filled markers for seen sizes, hollow for unseen ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("next_board_exact", "next-board exact (%)"), ("whatif_exact", "what-if exact (%)"),
              ("action_accuracy", "action accuracy (%)"), ("apples_ratio", "EqM / expert apples (%)"))
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    entries = result["sizes"]
    for axis, (key, label) in zip(axes, panels):
        for seen, style in ((True, dict(marker="o", color="tab:blue", label="seen in training")),
                            (False, dict(marker="o", markerfacecolor="white", color="tab:orange", label="unseen"))):
            chosen = [e for e in entries if e["seen"] == seen and e[key] is not None]
            axis.plot([e["cells"] for e in chosen], [100 * e[key] for e in chosen], linestyle="none", markersize=7,
                      **style)
            for entry in chosen:
                axis.annotate(entry["size"], (entry["cells"], 100 * entry[key]), fontsize=7,
                              textcoords="offset points", xytext=(3, 3))
        axis.set_xlabel("board cells")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle("Per board size: seen vs unseen sizes")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ---- command line ----------------------------------------------------------------------------------------


def trained_sizes(model_path: str, model) -> tuple[str, ...]:
    """The sizes a model was trained on: metrics.json's `board_sizes` beside the weights (written by
    `snake-eqm train`), else the config's own size for a fixed-size model, else none known."""
    folder = Path(model_path)
    metrics = folder / "metrics.json"
    if metrics.is_file():
        sizes = json.loads(metrics.read_text()).get("board_sizes")
        if sizes:
            return tuple(sizes)
    config = model.config
    if getattr(config, "fixed_board_size", True):
        return (size_name(config.board_height, config.board_width),)
    return ()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    sizes = tuple(size_name(*size) for size in args.sizes)  # parsed and range-checked by argparse
    seen = None if args.seen_sizes is None else tuple(size_name(*size) for size in args.seen_sizes)
    if args.expert_only:
        return _expert_only(args, sizes)
    if args.model is None:
        parser.error("--model is required (unless --expert-only)")
    torch.set_flush_denormal(True)  # trained weights give subnormal floats that slow CPU convolutions
    try:
        model = load_model(args.model, kind="eqm", device=args.device)
    except ValueError as error:  # PretrainedLoadError: missing, not ours, a baseline, unreadable weights
        parser.error(str(error))
    cfg = SizeEvalConfig(sizes=sizes, seen_sizes=seen if seen is not None else trained_sizes(args.model, model),
                         rows=args.rows, games=args.games, play_seed=args.play_seed, sample_seed=args.seed,
                         min_cap=args.min_cap, expert_cache=args.expert_cache,
                         command="snake-eqm evaluate-sizes " + shlex.join(argv))
    try:
        result = evaluate_sizes(model, cfg, progress=not args.no_progress)
    except ValueError as error:
        parser.error(str(error))
    result["config"]["model"] = args.model
    for entry in result["sizes"]:
        entry["targets_met"] = check_targets(entry)
    text = json.dumps(json_ready(result), indent=2, allow_nan=False)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    table = markdown_table(result)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table)
    if args.plot:
        print(f"wrote {plot_by_size(result, args.plot)}", file=sys.stderr)
    print(table)
    return 0


def _expert_only(args: argparse.Namespace, sizes: tuple[str, ...]) -> int:
    if not args.expert_cache:
        raise SystemExit("snake-eqm evaluate-sizes: --expert-only needs --expert-cache")
    cfg = SizeEvalConfig(sizes=sizes, games=args.games, play_seed=args.play_seed, min_cap=args.min_cap,
                         expert_cache=args.expert_cache)
    for name in sort_sizes(sizes):
        height, width = parse_board_size(name)
        summary = expert_play(height, width, play_cap(height, width, cfg.min_cap), cfg)
        print(f"{name}: expert mean apples {summary['mean_apples']:.1f} over {summary['games']} games")
    return 0


if __name__ == "__main__":
    sys.exit(main())
