"""`snake-eqm evaluate`: every number of the model card as one JSON file (`--json`), plus optional PNG plots.

Quiet by default: stdout gets a short table of the headline numbers, the full result goes to `--json`, and
the model-loading bars appear only with `--verbose`. When the evaluation's expert is not the one the model was
trained on (its folder's metrics.json, or its training datasets' cards), a one-line warning names both.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from snake_world_eqm.agents.flags import add_planner_arguments, add_thread_argument, set_threads
from snake_world_eqm.argtypes import (
    check_output_file,
    check_output_folder,
    device,
    int_in_range,
    non_negative_int,
    positive_float,
    positive_int,
    seed,
)
from snake_world_eqm.game.state import EXPERT_KINDS

# torch and the evaluation code load after parsing, so `--help` answers at once.

AGENT_NAMES = ("eqm", "planner", "baseline", "expert", "random")
EXTRA_EXPERT_AGENTS = tuple(f"expert-{kind}" for kind in EXPERT_KINDS)
EXTRA_AGENTS = ("eqm-noise", *EXTRA_EXPERT_AGENTS)  # eqm-noise: the EqM agent from EqM's N(0, I) start


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help="model folder or Hub repo id (SnakeWorldEqM)")
    parser.add_argument("--dataset", required=True, help="dataset folder or Hub repo id")
    parser.add_argument("--baseline", default=None, help="behaviour-cloning baseline folder or repo id")
    parser.add_argument("--json", default=None, help="write the full result JSON here (stdout gets a short table)")
    parser.add_argument("--plots", default=None, help="write PNG plots into this folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-rows", type=positive_int, default=1000, help="held-out rows measured (episode order)")
    parser.add_argument("--batch-size", type=int_in_range(1, 1 << 16), default=512)
    parser.add_argument("--games", type=positive_int, default=100, help="seeded closed-loop games per agent")
    parser.add_argument("--play-seed", type=seed, default=1000, help="game i uses seed play_seed + i")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="step cap per game (default: 20 x cells, 2,000 on 10x10: enough to fill the board)")
    parser.add_argument("--seed", type=seed, default=0, help="sampling noise seed")
    parser.add_argument("--agents", default=",".join(AGENT_NAMES),
                        help="comma-separated agents to play; expert-KIND (e.g. expert-astar) adds another expert, "
                             "eqm-noise the EqM agent from one noise draw instead of the origin, "
                             "eqm-votesK the EqM agent averaging K noise draws per move")
    parser.add_argument("--expert", choices=("auto", *EXPERT_KINDS), default="auto",
                        help="the expert agent and the continuation of fatal-decision labels (auto: the expert "
                             "named in the dataset's card; a warning names the model's own teacher when it differs)")
    parser.add_argument("--fixed-steps", default=None,
                        help="comma-separated sampling step counts (default: 1,2,3,5,10,20, evaluate.FIXED_STEP_COUNTS)")
    parser.add_argument("--thresholds", default=None, help="comma-separated adaptive thresholds (default: "
                        "half, one and two times the median gradient norms reached at fixed step counts)")
    parser.add_argument("--adaptive-max-steps", type=int_in_range(1, 1000), default=20)
    parser.add_argument("--spread-seeds", type=positive_int, default=4, help="noise seeds for the spread signal")
    parser.add_argument("--fatal-games", type=non_negative_int, default=8,
                        help="EqM-agent games per start kind whose states label fatal decisions (0: skip)")
    parser.add_argument("--fatal-horizon", type=int_in_range(1, 1000), default=10,
                        help="k: a decision is fatal if the game is lost within k moves under the expert")
    parser.add_argument("--device", type=device, default="cpu")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars for the evaluation itself")
    parser.add_argument("--verbose", action="store_true",
                        help="also show the libraries' model-loading bars and messages")
    add_planner_arguments(parser)
    add_thread_argument(parser)
    return parser


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SystemExit(f"{flag} needs positive integers, got {text!r}")
    return values


def config_from_args(args: argparse.Namespace, argv: list[str]):
    from snake_world_eqm.agents.factory import VOTING_AGENT
    from snake_world_eqm.agents.planner import planner_options_from_args
    from snake_world_eqm.evaluation.evaluate import FIXED_STEP_COUNTS, EvalConfig

    agents = tuple(name.strip() for name in args.agents.split(",") if name.strip())
    unknown = sorted(name for name in set(agents) - set(AGENT_NAMES) - set(EXTRA_AGENTS)
                     if not VOTING_AGENT.fullmatch(name))
    if unknown:
        raise SystemExit(f"--agents: unknown agent(s) {unknown}; choose from {[*AGENT_NAMES, *EXTRA_AGENTS]} "
                         "or eqm-votesK")
    if "baseline" in agents and args.baseline is None:
        agents = tuple(name for name in agents if name != "baseline")
    thresholds = None
    if args.thresholds:
        try:
            thresholds = tuple(positive_float(part) for part in args.thresholds.split(","))
        except argparse.ArgumentTypeError:
            raise SystemExit(f"--thresholds must be comma-separated positive numbers, got {args.thresholds!r}") from None
    return EvalConfig(split=args.split, max_rows=args.max_rows, batch_size=args.batch_size, games=args.games,
                      play_seed=args.play_seed, max_steps=args.max_steps, sample_seed=args.seed, agents=agents,
                      planner_options=planner_options_from_args(args),
                      fixed_steps=FIXED_STEP_COUNTS if args.fixed_steps is None
                      else _int_list(args.fixed_steps, "--fixed-steps"),
                      thresholds=thresholds, adaptive_max_steps=args.adaptive_max_steps,
                      spread_seeds=args.spread_seeds, fatal_games=max(args.fatal_games, 0),
                      fatal_horizon=args.fatal_horizon, expert=args.expert,
                      command="snake-eqm evaluate " + " ".join(shlex.quote(a) for a in argv))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, argv)
    import torch

    from snake_world_eqm.data import load_snake_dataset
    from snake_world_eqm.data.loading import dataset_expert
    from snake_world_eqm.evaluation.evaluate import evaluate, json_ready
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import provenance

    # Trained weights produce subnormal floats that make CPU convolutions several times slower.
    torch.set_flush_denormal(True)
    set_threads(args.threads)

    if not args.verbose:
        import datasets
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the "Loading weights" bar of every model load
        transformers_logging.set_verbosity_error()
        datasets.disable_progress_bars()  # "Generating train split" when a dataset folder is read

    # Everything that can fail on bad input fails here, in one line, before minutes of evaluation.
    try:
        check_distinct_outputs(args.json, args.plots)
        check_output_file(args.json, "--json")
        check_output_folder(args.plots, "--plots")
        model = load_model(args.model, kind="eqm", device=args.device)
        baseline = None if args.baseline is None else load_model(args.baseline, kind="baseline", device=args.device)
        dataset = load_snake_dataset(args.dataset, split=args.split)
        chosen = cfg.expert
        if cfg.expert == "auto":
            cfg.expert = dataset_expert([args.dataset])
    except (ValueError, OSError, RuntimeError) as error:
        print(f"snake-eqm evaluate: error: {error}", file=sys.stderr)
        return 2
    warning = teacher_mismatch(model_teacher(args.model), cfg.expert, chosen)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = evaluate(model, dataset, baseline=baseline, cfg=cfg, progress=not args.no_progress)
    result["config"]["model"], result["config"]["dataset"] = args.model, args.dataset
    result["config"]["baseline"] = args.baseline
    result["config"]["seconds"] = round(time.perf_counter() - started, 1)
    if args.plots:
        from snake_world_eqm.evaluation.plots import write_all_plots

        for path in write_all_plots(result, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    # The raw per-row norms feed the histogram only; the JSON keeps the summary numbers.
    result["uncertainty"].pop("grad_norm_values", None)
    result["provenance"] = provenance()  # command, code revision, machine, date: docs/results/README.md
    text = json.dumps(json_ready(result), indent=2, allow_nan=False)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(summary_table(result, json_path=args.json, warning=warning))
    return 0


def check_distinct_outputs(json_path: str | None, plots: str | None) -> None:
    """`--json X --plots X` would write the plots into X and then fail to write the file X after the whole
    evaluation: refuse it at once (ValueError naming both flags)."""
    if json_path is None or plots is None:
        return
    if Path(json_path).expanduser().resolve() == Path(plots).expanduser().resolve():
        raise ValueError(f"--json {json_path} and --plots {plots} are the same path; --json is a file, --plots "
                         "a folder (e.g. --json result.json --plots plots)")


def model_teacher(model: str) -> str | None:
    """The expert a model was trained on: `expert` in its folder's metrics.json, else the expert named by the
    cards of its training datasets (metrics.json `dataset`) that are on this machine; None when unknown."""
    from snake_world_eqm.data.loading import dataset_expert

    folder = Path(model).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "metrics.json")
        except ValueError:  # not a repo id
            return None
        if not isinstance(cached, str):
            return None
        folder = Path(cached).parent
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    if isinstance(metrics.get("expert"), str):
        return metrics["expert"]
    datasets = metrics.get("dataset") or []
    local = [name for name in ([datasets] if isinstance(datasets, str) else datasets)
             if isinstance(name, str) and (Path(name) / "README.md").is_file()]
    try:
        return dataset_expert(local) if local else None
    except (ValueError, OSError):
        return None


def teacher_mismatch(teacher: str | None, expert: str, chosen: str = "auto") -> str | None:
    """The one-line warning when the evaluation's expert is not the model's teacher (None when they agree or
    the teacher is unknown): action accuracy and the expert's play then measure against another player."""
    if teacher is None or teacher == expert:
        return None
    source = "named with --expert" if chosen != "auto" else "the dataset's expert"
    return (f"warning: the model was trained on the {teacher!r} expert but this evaluation's expert is {expert!r} "
            f"({source}); action accuracy counts agreement with the dataset's labels and the expert agent plays "
            f"{expert!r}: pass --expert {teacher} to play the model's teacher, or evaluate on a {teacher} dataset")


def summary_table(result: dict, json_path: str | None = None, warning: str | None = None) -> str:
    """A short table of the headline numbers for stdout (the full result is the --json file)."""
    config = result.get("config", {})
    lines = [f"snake-eqm evaluate: {config.get('model')} on {config.get('dataset')} ({config.get('split')}, "
             f"{result.get('rows', '?')} rows), expert {config.get('expert')}"]
    if warning:
        lines.append(warning)
    rows = [("action accuracy", result.get("action_accuracy")),
            ("next-board exact", result.get("next_board_exact")),
            ("what-if exact (mean of 4 moves)", (result.get("whatif_exact") or {}).get("mean")),
            ("validity", result.get("validity")),
            ("coherence", result.get("coherence"))]
    auroc = ((result.get("uncertainty") or {}).get("grad_norm") or {}).get("action_error_auroc")
    if auroc is not None:
        rows.append(("grad-norm AUROC for action errors (0.5 = chance)", auroc))
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {_number(value)}" for name, value in rows]
    play = result.get("play") or {}
    if play:
        lines.append(f"  {'agent':<12} {'games':>5}  {'apples mean ± std':>17}  {'wins':>4}  {'deaths':>6}  capped")
        for agent, stats in play.items():
            apples = [float(value) for value in stats.get("apples_per_game") or []]
            spread = _std(apples)
            mean = f"{stats.get('mean_apples', float('nan')):.2f} ± {spread:.2f}"
            lines.append(f"  {agent:<12} {stats.get('games', 0):>5}  {mean:>17}  {stats.get('wins', 0):>4}  "
                         f"{stats.get('deaths', 0):>6}  {stats.get('capped', 0)}")
    lines.append(f"full result: {json_path}" if json_path else "full result: pass --json PATH to write it")
    return "\n".join(lines)


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return (sum((value - mean) ** 2 for value in values) / (len(values) - 1)) ** 0.5


def _number(value) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


if __name__ == "__main__":
    sys.exit(main())
