"""DAgger rounds: collect on-policy data with the current model, aggregate, fine-tune, measure; repeat.

    python -m dataset_builder dagger --model PATH_OR_REPO_ID --dataset EXPERT_DATA --output-dir runs/dagger \
        --rounds 3 --samples-per-round 100000 --finetune-steps 800
    python hub_scripts/dagger.py ...                                  # the same
    python -m dataset_builder dagger ... --board-sizes 6x6 8x8 10x10 12x9    # one model, every size (see below)

Round r (1-based) plays `--samples-per-round` steps with the round r-1 model mixed with the expert at rate
beta_r = beta * beta_decay^(r-1) (probability that the expert plays a step), labels every visited state with
the expert's action (`OUTPUT/round-r/data`), fine-tunes the round r-1 model on the expert data plus every
round's data so far (`OUTPUT/round-r/model`), and plays seeded closed-loop games with the new model. Each
finished round writes `round-r/round.json`; a rerun skips finished rounds, so the loop resumes between
rounds (a round interrupted during fine-tuning resumes from its latest checkpoint). `OUTPUT/dagger.json`
holds the round-by-round table.

With `--board-sizes` (a model with `fixed_board_size=False`) each round collects `--samples-per-round` rows on
every size, one dataset folder per size (`round-r/data-HxW`, batched over as many games of that size as play whole episodes), fine-tunes on
all of them at once and scores every size; the table then has one row per round and size. Each size's folder is
published when complete, so an interrupted round resumes at the first size it had not finished.

Ross, Gordon & Bagnell (2011): training on the learner's own state distribution bounds the compounding
error linearly in the horizon instead of quadratically.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from snake_world_eqm.agents.flags import POLICY_AGENTS, POLICY_DTYPES
from snake_world_eqm.argtypes import (
    board_size,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    seed,
)
from snake_world_eqm.game.state import EXPERT_KINDS, size_name
from snake_world_eqm.output_guard import OutputLock, atomic_write_text, guard_output_folder

# The parser stays light (`python -m dataset_builder dagger --help`, hub_scripts/dagger.py): the builder,
# datasets, torch, the training engine and the agents load inside the functions that run a round.

ROUND_FILE = "round.json"
EVAL_SEED = 5000  # play seeds of the per-round score; the release evaluation uses 1000-1099


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_builder dagger",
        description="DAgger: collect on-policy data with the model, aggregate, fine-tune, evaluate; N rounds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="PATH_OR_REPO_ID", help="the round-0 model (EqM or baseline)")
    parser.add_argument("--dataset", required=True, nargs="+", metavar="PATH_OR_REPO_ID",
                        help="the expert dataset(s) every round also trains on")
    parser.add_argument("--output-dir", required=True, help="rounds go to OUTPUT_DIR/round-N/{data,model}")
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--board-sizes", nargs="+", type=board_size, default=None, metavar="HxW",
                        help="collect and score on each of these sizes (default: the model's own size); more than the "
                             "model's own size needs a model with fixed_board_size=False")
    parser.add_argument("--samples-per-round", type=positive_int, default=100_000, help="on-policy rows per round")
    parser.add_argument("--beta", type=probability, default=0.5, help="round 1's probability that the expert plays a step")
    parser.add_argument("--beta-decay", type=probability, default=0.5, help="beta of round r = beta * decay^(r-1)")
    parser.add_argument("--parallel-games", type=positive_int, default=None,
                        help="games stepped together while collecting (default: as many as let every game play one "
                             "whole episode of up to 20 x cells steps, at most 256; more games batch the model better "
                             "but cut episodes short, so long snakes are never seen)")
    parser.add_argument("--policy-agent", choices=POLICY_AGENTS, default="auto")
    parser.add_argument("--policy-dtype", choices=POLICY_DTYPES, default="float32",
                        help="run the collecting policy in bfloat16 autocast (faster on CPU; labels stay the expert's)")
    parser.add_argument("--expert", choices=EXPERT_KINDS, default=None,
                        help="the expert that labels the on-policy rows (default: the one named in the --dataset "
                             "cards, which must agree; a card that names none was built by astar)")
    parser.add_argument("--one-cell-fraction", type=probability, default=0.5,
                        help="share of each round's rows played from one-cell starts (the rest from three-cell ones)")
    parser.add_argument("--finetune-steps", type=positive_int, default=800, help="optimizer steps per round")
    parser.add_argument("--learning-rate", type=positive_float, default=5e-4)
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--train-args", default="", help="extra `snake-eqm train` flags, quoted (e.g. \"--eqm-sampling-steps 3\")")
    parser.add_argument("--eval-games", type=positive_int, default=20, help="seeded games per start kind after each round")
    parser.add_argument("--eval-max-steps", type=positive_int, default=None, help="default: 20 x cells")
    parser.add_argument("--fatal-repeat", type=non_negative_int, default=0,
                        help="also train on each round's fatal deviations (a policy step that differs from the expert's "
                             "label within --fatal-window steps before the policy's game died), repeated this many "
                             "times; 0 disables")
    parser.add_argument("--fatal-window", type=positive_int, default=20)
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser


class RoundInterrupted(RuntimeError):
    """A round's fine-tune was stopped by a signal: nothing of the round is recorded, a rerun resumes it."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        # the command recorded in dagger.json (sys.argv also holds "dagger" under -m dataset_builder)
        table = run(args, command=_command(argv))
    except ValueError as error:
        print(f"dagger: error: {error}", file=sys.stderr)
        return 2
    except RoundInterrupted as stopped:
        print(f"dagger: {stopped}", file=sys.stderr)
        return 128 + stopped.signum  # as `snake-eqm train` exits on the same signal
    print(format_table(table))
    return 0


def run(args: argparse.Namespace, command: str | None = None) -> list[dict[str, Any]]:
    """Every round (finished ones are read back, not redone); returns the round-by-round table."""
    from snake_world_eqm.data.loading import dataset_expert
    from snake_world_eqm.pretrained import load_config

    config = load_config(args.model)  # a bad model id fails before anything is written
    expert = args.expert or dataset_expert(args.dataset)  # the rounds' labels: the dataset's own teacher
    sizes = round_sizes(args.board_sizes, config)
    _check_datasets(args.dataset, config)  # before a round is scored or collected
    # One guard for every output: never the current folder, the model or a dataset, nor a folder of another
    # kind; an earlier DAgger run there is continued (finished rounds are read back).
    output = guard_output_folder(args.output_dir, "DAgger run", True, "--output-dir", (args.model, *args.dataset))
    output.mkdir(parents=True, exist_ok=True)
    with OutputLock(output, "--output-dir"):
        return _rounds(args, output, sizes, expert, command)


def round_sizes(requested: list[tuple[int, int]] | None, config: Any) -> list[tuple[int, int]]:
    """The board sizes every round collects and scores: `requested`, or the model's own size."""
    own = (config.board_height, config.board_width)
    sizes = list(dict.fromkeys(requested or [own]))
    if getattr(config, "fixed_board_size", True) and sizes != [own]:
        raise ValueError(f"--board-sizes {' '.join(size_name(*s) for s in sizes)}: the model plays only "
                         f"{size_name(*own)} boards (fixed_board_size=True); fine-tune it with "
                         "--config-set fixed_board_size=false first")
    return sizes


def _check_datasets(datasets: list[str], config: Any) -> None:
    """Every --dataset loads (columns, types, a sample of rows) and, for a fixed-size model, has its board size."""
    from snake_world_eqm.data import load_snake_dataset

    size = f"{config.board_height}x{config.board_width}" if getattr(config, "fixed_board_size", True) else "all"
    for dataset in datasets:
        try:
            load_snake_dataset(dataset, board_size=size)
        except ValueError as error:
            raise ValueError(f"--dataset {dataset}: {error}") from None


def _rounds(args: argparse.Namespace, output: Path, sizes: list[tuple[int, int]], expert: str,
            command: str | None) -> list[dict[str, Any]]:
    table = [_round_zero(args, output, sizes)]
    model, datasets = args.model, list(args.dataset)
    for round_index in range(1, args.rounds + 1):
        folder = output / f"round-{round_index}"
        record_file = folder / ROUND_FILE
        if record_file.is_file():
            record = json.loads(record_file.read_text())
        else:
            record = _run_round(args, folder, round_index, model, datasets, sizes, expert)
            atomic_write_text(record_file, json.dumps(record, indent=2))
        table.append(record)
        model = str(folder / "model")
        datasets.extend(str(data) for data in _size_folders(folder, sizes))
        print(format_row(record), flush=True)
    atomic_write_text(output / "dagger.json", json.dumps({"command": command or _command(sys.argv[1:]), "rounds": table}, indent=2))
    return table


def _size_folders(folder: Path, sizes: list[tuple[int, int]]) -> list[Path]:
    """A round's on-policy dataset folders: `data` for a one-size run (as before), `data-HxW` per size otherwise."""
    if len(sizes) == 1:
        return [folder / "data"]
    return [folder / f"data-{size_name(*size)}" for size in sizes]


def score_sizes(model: str, sizes: list[tuple[int, int]], args: argparse.Namespace) -> dict[str, Any]:
    """`score_agent` of the model's own agent on every size; with several, the per-size scores under `by_size` and their mean on top."""
    from snake_world_eqm.pretrained import load_model

    loaded = load_model(model)  # once; a fresh agent (fresh sampler seed) per size
    scores = {size_name(*size): score_agent(own_agent(loaded), *size, args.eval_games, args.eval_max_steps,
                                            args.no_progress) for size in sizes}
    if len(scores) == 1:
        return next(iter(scores.values()))
    total_games = sum(s["games"] for s in scores.values())
    return {"mean_apples": sum(s["mean_apples"] * s["games"] for s in scores.values()) / total_games,
            "mean_apples_ci95": None, "deaths": sum(s["deaths"] for s in scores.values()),
            "wins": sum(s["wins"] for s in scores.values()), "games": total_games, "by_size": scores}


def _round_zero(args: argparse.Namespace, output: Path, sizes: list[tuple[int, int]]) -> dict[str, Any]:
    """The starting model's score, measured once (same seeds as every round)."""
    record_file = output / "round-0.json"
    if record_file.is_file():
        return json.loads(record_file.read_text())
    record = {"round": 0, "model": args.model, "rows_added": 0, "beta": None, "held_out_action_accuracy": None,
              **score_sizes(args.model, sizes, args)}
    atomic_write_text(record_file, json.dumps(record, indent=2))
    print(format_row(record), flush=True)
    return record


def _run_round(args: argparse.Namespace, folder: Path, round_index: int, model: str, datasets: list[str],
               sizes: list[tuple[int, int]], expert: str) -> dict[str, Any]:
    beta = args.beta * args.beta_decay ** (round_index - 1)
    folders = _size_folders(folder, sizes)
    for offset, (data, (height, width)) in enumerate(zip(folders, sizes)):
        if (data / "README.md").is_file():  # published atomically: present means complete
            continue
        folder.mkdir(parents=True, exist_ok=True)
        # One seed per round and size, so that sizes never share games and a one-size run keeps its old seeds.
        collect(model, data, args.samples_per_round, beta, height, width,
                seed=args.seed + 1000 * round_index + 100_000 * offset, agent=args.policy_agent,
                one_cell_fraction=args.one_cell_fraction, expert=expert, progress=not args.no_progress,
                dtype=args.policy_dtype, parallel_games=args.parallel_games)
    train_on = [*datasets, *map(str, folders)]
    if args.fatal_repeat:
        hard = folder / "fatal"
        if not hard.is_dir():
            fatal = [*_round_data(datasets), *folders]
            save_fatal_deviations(fatal, hard, args.fatal_window, args.fatal_repeat)
        train_on.append(str(hard))
    summary = finetune(model, train_on, folder / "model", args)
    if summary.get("stopped_because") == "interrupted":
        # The fine-tune saved a checkpoint and returned; scoring its half-trained model would record the round
        # as finished (round.json), and a rerun would never complete it.
        name = summary.get("stop_signal", "SIGTERM")
        raise RoundInterrupted(f"round {round_index}'s fine-tune was stopped by {name} at step "
                               f"{summary.get('global_step')}; rerun the same command to resume it",
                               int(signal.Signals[name]))
    validation = summary.get("validation") or {}
    return {
        "round": round_index,
        "model": str(folder / "model"),
        "rows_added": sum(_rows(data) for data in folders),
        "beta": beta,
        "held_out_action_accuracy": validation.get("action_accuracy"),
        "held_out_rows": validation.get("num_rows"),
        "finetune_steps": summary.get("global_step"),
        "fatal_repeat": args.fatal_repeat,
        **score_sizes(str(folder / "model"), sizes, args),
    }


def whole_episode_games(num_samples: int, height: int, width: int, cap: int = 256) -> int:
    """Games to step together so that each can play one whole episode (20 x cells steps, the collection cap).

    A game's rows stop at its share of `num_samples`: 256 games sharing 40,000 rows play 156 steps each, so
    the policy never reaches a snake longer than ~20 cells, the states where its closed-loop games die.
    """
    return max(1, min(cap, num_samples // (20 * height * width)))


def collect(model: str, output: Path, num_samples: int, beta: float, height: int, width: int, seed: int,
            agent: str = "auto", one_cell_fraction: float = 0.5, expert: str = "astar", progress: bool = True,
            dtype: str = "float32", parallel_games: int | None = None) -> None:
    """On-policy rows into the dataset folder `output` (episodes start from one-cell snakes at
    `one_cell_fraction`, else three-cell ones; `parallel_games` games stepped together so the model batches,
    by default `whole_episode_games`)."""
    from snake_world_eqm.agents.factory import load_policy
    from snake_world_eqm.data.generate import GenerationConfig

    from .builder import build_dataset

    games = parallel_games or whole_episode_games(num_samples, height, width)
    policy = load_policy(model, agent, height, width, seed=seed, dtype=dtype)
    config = GenerationConfig(num_samples=num_samples, height=height, width=width, seed=seed, perturb_prob=0.0, expert=expert,
                              parallel_games=games, one_cell_fraction=one_cell_fraction, beta=beta,
                              policy_name=model, policy=policy)
    command = (f"python -m dataset_builder --policy {model} --beta {beta} --num-samples {num_samples} --seed {seed} "
               f"--perturb-prob 0 --parallel-games {games} --one-cell-fraction {one_cell_fraction} --expert {expert} "
               f"--policy-dtype {dtype}")
    build_dataset(config, output, progress=progress, command=command, overwrite=True)


def _round_data(datasets: list[str]) -> list[Path]:
    """The on-policy folders among the datasets (those with a `source` column in their train split)."""
    import pyarrow.parquet as pq

    found = []
    for name in datasets:
        files = sorted(Path(name).glob("data/train-*.parquet"))
        if files and "source" in pq.read_schema(files[0]).names:
            found.append(Path(name))
    return found


def fatal_deviation_rows(split: Any, window: int) -> Any:
    """Indices of rows where the policy played another action than the expert's label and its game died within
    `window` steps: the decisions that most likely lost the game. Rows are in episode/step order."""
    import numpy as np

    from snake_world_eqm.data.features import SOURCE_NAMES

    columns = split.select_columns(["episode_id", "source", "taken_action", "action", "terminated_per_action"])
    table = columns.with_format("numpy")[:]
    episode, taken = np.asarray(table["episode_id"]), np.asarray(table["taken_action"])
    terminated = np.asarray(table["terminated_per_action"])
    died = terminated[np.arange(len(taken)), taken]
    deviated = (np.asarray(table["source"]) == SOURCE_NAMES.index("policy")) & (taken != np.asarray(table["action"]))
    fatal = np.zeros(len(taken), dtype=bool)
    for death in np.flatnonzero(died):
        rows = np.arange(max(0, death - window), death + 1)
        rows = rows[episode[rows] == episode[death]]
        fatal[rows[deviated[rows]]] = True
    return np.flatnonzero(fatal)


def save_fatal_deviations(round_folders: list[Path], output: Path, window: int, repeat: int) -> int:
    """A train-only dataset (`save_to_disk`) of the rounds' fatal deviations, each row `repeat` times."""
    import numpy as np
    from datasets import DatasetDict, concatenate_datasets

    from snake_world_eqm.data import load_snake_dataset

    picked = []
    for folder in round_folders:
        split = load_snake_dataset(folder, split="train")
        rows = fatal_deviation_rows(split, window)
        if rows.size:
            picked.append(split.select(rows.tolist()))
    if not picked:
        raise ValueError("no fatal deviations found in the on-policy data (did the policy never die?)")
    hard = concatenate_datasets(picked)
    repeated = hard.select(np.tile(np.arange(len(hard)), repeat).tolist())
    from .builder import staged_output

    with staged_output(output, overwrite=True) as (staging, _):  # written beside, renamed: a kill leaves no half
        DatasetDict({"train": repeated.flatten_indices()}).save_to_disk(str(staging))
    print(f"fatal deviations: {len(hard)} rows x {repeat} -> {output}", flush=True)
    return len(hard)


def finetune(model: str, datasets: list[str], output: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune `model` on `datasets` (one process); resumes an interrupted run of this round."""
    from snake_world_eqm.training import run as train

    argv = ["--model-name-or-path", model, "--dataset", *datasets, "--output-dir", str(output),
            "--max-steps", str(args.finetune_steps), "--learning-rate", str(args.learning_rate),
            "--batch-size", str(args.batch_size), "--warmup-steps", str(min(50, args.finetune_steps // 10)),
            "--eval-every", str(args.finetune_steps), "--save-every", str(max(1, args.finetune_steps // 4)),
            "--checkpoints-total-limit", "2", "--resume-from-checkpoint", "latest", "--seed", str(args.seed),
            "--report-to", "none", *shlex.split(args.train_args)]
    if args.no_progress:
        argv.append("--disable-progress-bar")
    return train(argv)


def own_agent(loaded: Any) -> Any:
    """The model's own agent: the EqM agent for a world model, the baseline's argmax for a baseline."""
    from snake_world_eqm.agents.simple import BaselineAgent, EqMAgent
    from snake_world_eqm.pretrained import model_kind

    return EqMAgent(loaded, seed=0) if model_kind(loaded.config) == "eqm" else BaselineAgent(loaded)


def score_agent(agent: Any, height: int, width: int, games: int, max_steps: int | None,
                no_progress: bool = True) -> dict[str, Any]:
    """Closed-loop score of `agent` on HxW, both start kinds, fixed seeds."""
    from snake_world_eqm.evaluation.closed_loop import play_both_starts

    summary = play_both_starts(agent, height, width, games, EVAL_SEED, max_steps, progress=not no_progress)
    return {"mean_apples": summary["mean_apples"], "mean_apples_ci95": summary["mean_apples_ci95"],
            "deaths": summary["deaths"], "wins": summary["wins"], "games": summary["games"],
            "by_start": {k: {"mean_apples": v["mean_apples"], "deaths": v["deaths"], "wins": v["wins"]}
                         for k, v in summary["by_start"].items()}}


def _rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(file).metadata.num_rows for file in (folder / "data").glob("*.parquet"))


def _command(argv: list[str]) -> str:
    return "python -m dataset_builder dagger " + " ".join(shlex.quote(str(a)) for a in argv)


def _interval(score: dict[str, Any], label: str = "") -> str:
    """" (LABELlow-high)" of the 95% interval; empty for a multi-size mean, which has none."""
    low_high = score.get("mean_apples_ci95")
    return f" ({label}{low_high[0]:.1f}-{low_high[1]:.1f})" if low_high else ""


def _score_text(score: dict[str, Any]) -> str:
    interval = _interval(score, "95% CI ")
    return f"mean apples {score['mean_apples']:.2f}{interval}, deaths {score['deaths']}/{score['games']}, wins {score['wins']}"


def format_row(record: dict[str, Any]) -> str:
    accuracy = record.get("held_out_action_accuracy")
    head = (f"round {record['round']}: rows added {record['rows_added']:,}, held-out action accuracy "
            f"{'-' if accuracy is None else f'{accuracy:.4f}'}, ")
    sizes = record.get("by_size")
    if not sizes:
        return head + _score_text(record)
    return head + "; ".join(f"{name}: {_score_text(score)}" for name, score in sizes.items())


def _table_cells(score: dict[str, Any]) -> str:
    return f"{score['mean_apples']:.2f}{_interval(score)} | {score['deaths']}/{score['games']} | {score['wins']}"


def format_table(table: list[dict[str, Any]]) -> str:
    """The round table; a multi-size run has one row per round and size."""
    multi = any(r.get("by_size") for r in table)
    size_header = " size |" if multi else ""
    lines = [f"| round |{size_header} rows added | beta | held-out action accuracy | mean apples (95% CI) | deaths | wins |",
             "|---|" + ("---|" if multi else "") + "---|---|---|---|---|---|"]
    for r in table:
        accuracy = r.get("held_out_action_accuracy")
        common = (f"{r['rows_added']:,} | {'-' if r.get('beta') is None else r['beta']} | "
                  f"{'-' if accuracy is None else f'{accuracy:.4f}'}")
        for name, score in (r.get("by_size") or {"": r}).items():
            size_cell = f" {name} |" if multi else ""
            lines.append(f"| {r['round']} |{size_cell} {common} | {_table_cells(score)} |")
    return "\n".join(lines)
