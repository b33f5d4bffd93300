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

from snake_world_eqm.agents.factory import make_agent
from snake_world_eqm.agents.simple import ExpertAgent
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
    min_cap: int = 2000  # step cap per game: max(min_cap, cap_multiple x cells)
    cap_multiple: int = 20  # 20 x cells: apples within a budget; 50 x cells: a game can fill the board (wins)
    expert_cache: str | None = None  # JSON of expert play per size: the expert does not depend on the model
    agents: tuple[str, ...] = ("eqm",)  # model agents (agents.factory names) that play every size
    experts: tuple[str, ...] = ("astar",)  # experts that play the same games (cached); astar is the yardstick
    teacher: str = "astar"  # the expert whose moves label the one-step rows (action accuracy vs the teacher)
    command: str = ""
    extra: dict = field(default_factory=dict)


def play_cap(height: int, width: int, min_cap: int = 2000, multiple: int = 20) -> int:
    return max(min_cap, multiple * height * width)


EVAL_GAMES = 16  # parallel expert games whose steps the one-step rows are drawn from


def evaluation_rows(height: int, width: int, num_rows: int, seed: int, games: int = EVAL_GAMES,
                    expert: str = "astar") -> dict[str, np.ndarray]:
    """`num_rows` rows drawn uniformly from about one whole `expert` episode in each of `EVAL_GAMES` games on an
    HxW board (so long snakes are measured as often as the training data holds them), as `held_out_metrics`
    reads them; the action labels are that expert's moves."""
    from snake_world_eqm.data.generate import GenerationConfig, chunk_rows

    generated = max(num_rows, games * 3 * height * width)  # an A* episode lasts about 3 x cells steps
    config = GenerationConfig(num_samples=generated, height=height, width=width, seed=seed, expert=expert,
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


def evaluate_size(model, height: int, width: int, cfg: SizeEvalConfig, progress: bool = False,
                  baseline=None) -> dict:
    """One-step metrics and the play of `cfg.agents` on one board size (the experts' play: `add_expert_play`)."""
    check_model_takes(model, height, width)
    started = time.perf_counter()
    rows = evaluation_rows(height, width, cfg.rows, cfg.data_seed, expert=cfg.teacher)
    one_step, _ = held_out_metrics(model, rows, EvalConfig(batch_size=cfg.batch_size, sample_seed=cfg.sample_seed),
                                   progress=progress)
    cap = play_cap(height, width, cfg.min_cap, cfg.cap_multiple)
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
        "play": {name: _play(make_agent(name, model, baseline=baseline, seed=cfg.sample_seed), height, width, cap,
                             cfg, progress) for name in cfg.agents},
        "seconds": round(time.perf_counter() - started, 1),
    }


def add_expert_play(entry: dict, cfg: SizeEvalConfig, progress: bool = False) -> dict:
    """The experts' play on the same games (`play["expert"]` is the A* expert's, the yardstick), and each
    agent's share of the A* expert's apples (`apples_ratio` for the EqM agent, `ratio` per agent)."""
    for kind in dict.fromkeys(("astar", *cfg.experts)):
        summary = expert_play(entry["height"], entry["width"], entry["max_steps"], cfg, progress, kind=kind)
        entry["play"]["expert" if kind == "astar" else f"expert-{kind}"] = summary
    entry["expert_mean_apples"] = expert = entry["play"]["expert"]["mean_apples"]
    entry["ratio"] = {name: (play["mean_apples"] / expert if expert else None) for name, play in entry["play"].items()}
    if "eqm" in entry["play"]:
        entry["eqm_mean_apples"] = entry["play"]["eqm"]["mean_apples"]
        entry["apples_ratio"] = entry["ratio"]["eqm"]
    return entry


def _play(agent, height: int, width: int, cap: int, cfg: SizeEvalConfig, progress: bool) -> dict:
    summary = play_both_starts(agent, height, width, cfg.games, cfg.play_seed, cap, progress=progress)
    for start in summary.get("by_start", {}).values():
        for key in _PER_GAME_KEYS:
            start.pop(key, None)
    return {key: value for key, value in summary.items() if key not in _PER_GAME_KEYS}


def expert_play(height: int, width: int, cap: int, cfg: SizeEvalConfig, progress: bool = False,
                kind: str = "astar") -> dict:
    """The `kind` expert's play on the same seeded games; read from / added to `cfg.expert_cache` when set
    (keyed by everything the games depend on), since it is the same for every model."""
    key = f"{size_name(height, width)} games={cfg.games} seed={cfg.play_seed} cap={cap}"
    key = key if kind == "astar" else f"{key} expert={kind}"  # the A* key stays what earlier caches hold
    cache = Path(cfg.expert_cache) if cfg.expert_cache else None
    stored = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    if key in stored:
        return stored[key]
    summary = json_ready(_play(ExpertAgent(kind), height, width, cap, cfg, progress))
    if cache is not None:
        stored = json.loads(cache.read_text()) if cache.is_file() else {}
        stored[key] = summary
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored, indent=1) + "\n")
    return summary


def evaluate_sizes(model, cfg: SizeEvalConfig, progress: bool = True, baseline=None) -> dict:
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
            results.append(evaluate_size(model, height, width, cfg, progress=False, baseline=baseline))
    # The expert last: its games are the same for every model, so a cache (or a parallel --expert-only run) has them.
    for entry in results:
        add_expert_play(entry, cfg)
    return {"sizes": results, "config": asdict(cfg)}


# ---- acceptance, table, plot -----------------------------------------------------------------------------

# Issue #25's bar, the same for sizes seen in training and unseen ones.
ONE_STEP_TARGETS = {"next_board_exact": 0.99, "whatif_exact": 0.99, "action_accuracy": 0.97}
APPLES_TARGETS = {"eqm": 0.85, "planner": 1.0}  # share of the A* expert's mean apples (cap 20 x cells)
WIN_RATE_TARGETS = (100, 0.90, 0.70)  # planner wins (cap 50 x cells): >= 90% up to 100 cells, >= 70% above


def check_targets(entry: dict, cap_multiple: int = 20) -> dict[str, bool]:
    """Which acceptance targets this size meets: the one-step ones, then apples at a 20 x cells cap (agents
    that played) or the planner's win rate when games may fill the board (cap 50 x cells)."""
    met = {name: entry[name] is not None and entry[name] >= bound for name, bound in ONE_STEP_TARGETS.items()}
    ratios = entry.get("ratio") or {}
    if cap_multiple < 50:
        for agent, bound in APPLES_TARGETS.items():
            if agent in ratios:
                met[f"{agent}_apples_ratio"] = ratios[agent] is not None and ratios[agent] >= bound
    elif "planner" in entry["play"]:
        cells, small, large = WIN_RATE_TARGETS
        play = entry["play"]["planner"]
        met["planner_win_rate"] = play["wins"] / play["games"] >= (small if entry["cells"] <= cells else large)
    return met


def _play_cell(play: dict) -> str:
    low, high = play.get("mean_apples_ci95") or (None, None)
    interval = "" if low is None else f" ({low:.1f}-{high:.1f})"
    return f"{play['mean_apples']:.1f}{interval} {play['deaths']}d/{play['wins']}w"


def markdown_table(result: dict) -> str:
    """One row per size: one-step metrics, then each player's mean apples (95% CI), deaths and wins."""
    players = list(dict.fromkeys(name for entry in result["sizes"] for name in entry["play"]))
    header = ("size", "seen", "next-board exact", "what-if exact", "action acc.", *players, "cap", "targets met")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cfg = result["config"]
    for entry in result["sizes"]:
        met = check_targets(entry, cfg.get("cap_multiple", 20))
        plays = [_play_cell(entry["play"][name]) if name in entry["play"] else "-" for name in players]
        lines.append("| " + " | ".join([
            entry["size"], "yes" if entry["seen"] else "**no**",
            f"{100 * entry['next_board_exact']:.1f}%", f"{100 * entry['whatif_exact']:.1f}%",
            f"{100 * entry['action_accuracy']:.1f}%", *plays, str(entry["max_steps"]),
            f"{sum(met.values())}/{len(met)}" + ("" if all(met.values()) else " (missed: " + ", ".join(
                name for name, ok in met.items() if not ok) + ")"),
        ]) + " |")
    lines.append("")
    lines.append(f"{cfg['rows']} one-step rows per size (fresh `{cfg.get('teacher', 'astar')}` expert episodes, data "
                 f"seed {cfg['data_seed']}; action accuracy against that teacher); {cfg['games']} games per size from "
                 f"each start (three-cell and one-cell snakes, seeds {cfg['play_seed']}..{cfg['play_seed'] + cfg['games'] - 1}), "
                 f"cap max({cfg['min_cap']}, {cfg.get('cap_multiple', 20)} x cells). Play cells: mean apples (95% "
                 "bootstrap interval), deaths d / wins w (board filled); `expert` is the A* expert.")
    return "\n".join(lines) + "\n"


def plot_by_size(result: dict, path: str | Path) -> Path:
    """Three panels against board cells: the one-step metrics, every player's mean apples, and its win rate;
    filled markers for sizes seen in training, hollow ones for unseen sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = sorted(result["sizes"], key=lambda e: e["cells"])
    players = list(dict.fromkeys(name for entry in entries for name in entry["play"]))
    one_step = (("next_board_exact", "next board"), ("whatif_exact", "what-if"), ("action_accuracy", "action"))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of = {name: colors[i % len(colors)] for i, name in enumerate([*(label for _, label in one_step), *players])}
    series = [(0, label, lambda e, k=key: 100 * e[k]) for key, label in one_step]
    series += [(1, name, lambda e, n=name: e["play"][n]["mean_apples"] if n in e["play"] else None) for name in players]
    series += [(2, name, lambda e, n=name: (100 * e["play"][n]["wins"] / e["play"][n]["games"]
                                           if n in e["play"] else None)) for name in players]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for panel, label, value in series:
        color = color_of[label]  # one colour per player in both play panels
        points = [(e["cells"], value(e), e["seen"]) for e in entries if value(e) is not None]
        axes[panel].plot([p[0] for p in points], [p[1] for p in points], color=color, alpha=0.5, label=label)
        for seen in (True, False):
            chosen = [p for p in points if p[2] == seen]
            axes[panel].plot([p[0] for p in chosen], [p[1] for p in chosen], linestyle="none", marker="o",
                             color=color, markerfacecolor=color if seen else "white")
    for axis, title in zip(axes, ("one-step exact / accuracy (%)", "mean apples per game", "wins: board filled (%)")):
        axis.set_xlabel("board cells (filled marker: size seen in training; hollow: unseen)")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    cfg = result["config"]
    figure.suptitle(f"Per board size, cap {cfg.get('cap_multiple', 20)} x cells, {cfg['games']} games per start kind")
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
        baseline = None if args.baseline is None else load_model(args.baseline, kind="baseline", device=args.device)
    except ValueError as error:  # PretrainedLoadError: missing, not ours, a baseline, unreadable weights
        parser.error(str(error))
    agents = tuple(dict.fromkeys(args.agents))
    if "baseline" in agents and baseline is None:
        parser.error("--agents baseline needs --baseline PATH_OR_REPO_ID (a behaviour-cloning model)")
    cfg = SizeEvalConfig(sizes=sizes, seen_sizes=seen if seen is not None else trained_sizes(args.model, model),
                         rows=args.rows, games=args.games, play_seed=args.play_seed, sample_seed=args.seed,
                         min_cap=args.min_cap, cap_multiple=args.cap_multiple, expert_cache=args.expert_cache,
                         agents=agents, experts=tuple(dict.fromkeys(args.experts)), teacher=args.teacher,
                         command="snake-eqm evaluate-sizes " + shlex.join(argv))
    try:
        result = evaluate_sizes(model, cfg, progress=not args.no_progress, baseline=baseline)
    except ValueError as error:
        parser.error(str(error))
    result["config"]["model"] = args.model
    for entry in result["sizes"]:
        entry["targets_met"] = check_targets(entry, cfg.cap_multiple)
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
                         cap_multiple=args.cap_multiple, expert_cache=args.expert_cache)
    for name in sort_sizes(sizes):
        height, width = parse_board_size(name)
        for kind in dict.fromkeys(("astar", *args.experts)):
            summary = expert_play(height, width, play_cap(height, width, cfg.min_cap, cfg.cap_multiple), cfg, kind=kind)
            print(f"{name}: {kind} expert mean apples {summary['mean_apples']:.1f}, wins {summary['wins']} "
                  f"over {summary['games']} games")
    return 0


if __name__ == "__main__":
    sys.exit(main())
