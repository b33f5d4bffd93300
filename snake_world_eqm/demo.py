"""`snake-eqm demo`: the whole job on a laptop CPU, no network, in about two minutes; `--full` for a longer run.

Builds a small dataset from the `route` expert (the teacher the shipped world model learned from), fine-tunes
the world model shipped in the package on it (or, with `--init scratch`, trains one from zero), trains the
behaviour-cloning baseline from zero, evaluates both against that expert, and writes a report folder:
`report.json`, plots, a GIF of the EqM agent playing, and `commands.txt` with the exact commands that
reproduce every step. Each step calls the same `main(argv)` as the corresponding `snake-eqm` subcommand, so
the demo exercises the real code paths. It uses as many torch threads as the machine has cores idle (read
from /proc/stat over half a second, at least one): threads that share a busy core only contend for it.

Training is budgeted in optimizer steps, never in minutes: a slow or busy machine takes longer but gets
the same model. If the world model still ends below `--quality-floor` action accuracy, the demo says so
in one line and exits with status 1 (the report is written anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys
import time
from pathlib import Path

# Two sizes of the same job; --full is the earlier default, for a longer look. The quick profile fine-tunes a model
# that already plays, so a few steps keep it at its teacher's level; its baseline takes more, smaller steps than
# --full's (64 rows, not 256): at equal samples it ends far more accurate. The world model's steps are of 256 rows.
PROFILES = {
    "quick": {"num_samples": 20_000, "train_steps": {"shipped": 40, "scratch": 500}, "baseline_steps": 480,
              "baseline_batch_size": 64,
              "games": 10, "max_steps": 200, "fatal_games": 0, "validations": 2},
    "full": {"num_samples": 40_000, "train_steps": {"shipped": 200, "scratch": 500}, "baseline_steps": 400,
             "baseline_batch_size": 256,
             "games": 20, "max_steps": 300, "fatal_games": 8, "validations": 4},
}
# Wall minutes of the quick profile on this project's 2-core machine, idle and beside one CPU-bound process
# (docs/results/demo_cpu.json and demo_cpu_loaded.json; a test keeps them equal).
EXPECTED_MINUTES = {"idle": 1.7, "loaded": 2.5}
EXPERT = "route"
# The shipped checkpoint's recipe trains from zero at 2e-3; fine-tuning a trained model wants a gentler step.
LEARNING_RATE = {"shipped": 3e-4, "scratch": 2e-3}
# With no terminal to redraw, progress bars print a status line this often (seconds) instead of every tick.
PIPED_PROGRESS_SECONDS = "5"


def build_parser() -> argparse.ArgumentParser:
    from snake_world_eqm.argtypes import positive_float, positive_int, seed

    parser = argparse.ArgumentParser(prog="snake-eqm demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="snake_eqm_demo", help="report folder (refused if it exists)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    parser.add_argument("--init", choices=("shipped", "scratch"), default="shipped",
                        help="fine-tune the checkpoint shipped in the package, or train the world model from zero")
    parser.add_argument("--full", action="store_true",
                        help="the longer run: 40,000 rows, 200 fine-tuning and 400 baseline steps, 20 games per start "
                             "kind of 300 steps, fatal-decision AUROCs from 8 games (default: 20,000 rows, 40 and 480 "
                             "steps, 10 games of 200 steps, no fatal-decision AUROCs)")
    parser.add_argument("--train-steps", type=positive_int, default=None,
                        help="world-model optimizer steps of batch 256 (default: 40 fine-tuning, 200 with --full, "
                             "500 from zero)")
    parser.add_argument("--baseline-steps", type=positive_int, default=None,
                        help="baseline optimizer steps (default: 480 of batch 64; 400 of batch 256 with --full)")
    parser.add_argument("--num-samples", type=positive_int, default=None,
                        help="dataset rows (expert games; default: 20,000, 40,000 with --full)")
    parser.add_argument("--augment", action="store_true", help="add the 8 board symmetries (8x the rows)")
    parser.add_argument("--games", type=positive_int, default=None,
                        help="seeded games per agent and start kind in the evaluation (default: 10, 20 with --full)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads (default: the cores free now, at least 1)")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="step cap per evaluation game and the recorded GIF (default: 200, 300 with --full)")
    parser.add_argument("--eval-rows", type=positive_int, default=500, help="held-out rows measured")
    parser.add_argument("--quality-floor", type=positive_float, default=0.8,
                        help="least action accuracy against the expert for the demo to count as a success")
    parser.add_argument("--seed", type=seed, default=0)
    return parser


@contextlib.contextmanager
def _progress_every_few_seconds():
    """Our progress bars (dataset, training, evaluation) stay; the libraries' sub-second ones (loading
    weights, writing shards, converting splits) go. tqdm reads TQDM_* defaults from the environment: in a
    pipe or a log, a bar prints one status line every few seconds instead of ten a second."""
    piped = not sys.stderr.isatty() and "TQDM_MININTERVAL" not in os.environ
    if piped:  # before the libraries load: tqdm reads it when first imported (no effect if already loaded)
        os.environ["TQDM_MININTERVAL"] = PIPED_PROGRESS_SECONDS
    import datasets
    from transformers.utils import logging as transformers_logging

    restore = [enable for enabled, enable in (
        (transformers_logging.is_progress_bar_enabled(), transformers_logging.enable_progress_bar),
        (datasets.is_progress_bar_enabled(), datasets.enable_progress_bars)) if enabled]
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if piped:
            os.environ.pop("TQDM_MININTERVAL", None)
        for enable in restore:
            enable()


def _run_step(title: str, module_main, argv: list[str], command: str, log: list[str],
              quiet: bool = False) -> None:
    """Run one subcommand's `main(argv)`; `quiet` keeps its stdout out of the console (it is in a file)."""
    log.append(f"{command} {shlex.join(argv)}")
    print(f"\n=== {title}\n$ {log[-1]}", flush=True)
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        code = module_main(argv)
    if code:
        raise SystemExit(f"snake-eqm demo: step '{title}' failed with exit code {code}")


def _build_dataset(out: Path, args: argparse.Namespace, log: list[str]) -> Path:
    """Expert rows as compressed parquet (a few MB) in OUTPUT_DIR/dataset; `load_dataset` reads the folder."""
    from snake_world_eqm.data import GenerationConfig, generate_dataset_dict

    path = out / "dataset"
    config = GenerationConfig(num_samples=args.num_samples, seed=args.seed, augment=args.augment, expert=EXPERT)
    # The library call behind `python -m dataset_builder` (which also writes a card and validates).
    log.append(f"python -m dataset_builder --num-samples {args.num_samples} --seed {args.seed} --expert {EXPERT}"
               f"{' --augment' if args.augment else ''} --output {path}")
    print(f"=== dataset ({args.num_samples} rows{' x 8 symmetries' if args.augment else ''})\n$ {log[-1]}",
          flush=True)
    for split, rows in generate_dataset_dict(config).items():
        (path / "data").mkdir(parents=True, exist_ok=True)
        rows.to_parquet(str(path / "data" / f"{split}.parquet"))
    return path


def _train_world_model(out: Path, dataset: Path, args: argparse.Namespace, log: list[str]) -> None:
    from snake_world_eqm.shipped import PRETRAINED_10X10
    from snake_world_eqm.training import main as train_main

    steps = args.train_steps
    start = (["--model-name-or-path", str(PRETRAINED_10X10)] if args.init == "shipped"
             else ["--config-preset", "cpu-small"])
    title = ("fine-tune the shipped EqM world model" if args.init == "shipped" else "train the EqM world model from zero")
    _run_step(f"{title} ({steps} steps)", train_main,
              [*_train_flags(dataset, args, steps, LEARNING_RATE[args.init]), *start, "--output-dir", str(out / "eqm")],
              "snake-eqm train", log)


def _train_flags(dataset: Path, args: argparse.Namespace, steps: int, learning_rate: float) -> list[str]:
    return ["--dataset", str(dataset), "--seed", str(args.seed), "--max-steps", str(steps),
            "--learning-rate", str(learning_rate), "--warmup-steps", str(min(100, steps // 10)),
            "--eval-every", str(max(1, steps // args.validations)), "--save-every", str(steps), "--checkpoints-total-limit", "1"]


REPORT_ENTRIES = ("dataset", "eqm", "baseline", "plots", "report.json", "commands.txt", "eqm_game.gif")


def _remove_previous_report(out: Path) -> None:
    """--overwrite removes what an earlier demo wrote there, and nothing else (the folder may be `.`)."""
    import shutil

    for name in REPORT_ENTRIES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _summary(report: dict, demo: dict) -> str:
    lines = [f"world model: {demo['init_description']}",
             f"action accuracy vs expert: {report.get('action_accuracy', float('nan')):.3f}",
             f"next-board exact match:    {report.get('next_board_exact', float('nan')):.3f}"]
    for agent, stats in report.get("play", {}).items():
        lines.append(f"{agent:>9}: mean apples {stats.get('mean_apples', float('nan')):.2f} "
                     f"over {stats.get('games', '?')} games")
    return "\n".join(lines)


def _quality_verdict(accuracy: float, args: argparse.Namespace, steps: int) -> str | None:
    """One line when the world model is below the floor: the number, the likely reason, what to do."""
    if accuracy >= args.quality_floor:
        return None
    if args.init == "scratch":
        fix = f"rerun with more steps (--train-steps {2 * steps}) or fine-tune the shipped model (--init shipped)"
    else:  # fine-tuning lost what the shipped model knew
        fix = f"rerun with more rows (--num-samples {2 * args.num_samples}) or fewer --train-steps than {steps}"
    return (f"snake-eqm demo: the EqM world model reached action accuracy {accuracy:.3f}, below the "
            f"{args.quality_floor:.2f} floor, after {steps} steps ({args.init}): its play numbers mean little; {fix}.")


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the flags left unset from the profile (quick, or --full), and the thread count from the free cores."""
    profile = PROFILES["full" if args.full else "quick"]
    args.num_samples = args.num_samples or profile["num_samples"]
    args.train_steps = args.train_steps or profile["train_steps"][args.init]
    args.baseline_steps = args.baseline_steps or profile["baseline_steps"]
    args.games = args.games or profile["games"]
    args.max_steps = args.max_steps or profile["max_steps"]
    args.fatal_games, args.validations = profile["fatal_games"], profile["validations"]
    args.baseline_batch_size = profile["baseline_batch_size"]
    args.cores_free = free_cores()  # sampled once: the printed count and the thread count agree
    args.threads = args.threads or args.cores_free
    return args


def free_cores(window: float = 0.5) -> int:
    """Cores idle now, at least one: the idle share of CPU time over `window` seconds (Linux /proc/stat), else
    the core count less the 1-minute load average (which lags a neighbour that just started or stopped)."""
    cores = os.cpu_count() or 1
    try:
        first = _cpu_times()
        time.sleep(window)
        second = _cpu_times()
        busy = cores * (1 - (second[1] - first[1]) / max(second[0] - first[0], 1))
    except (OSError, ValueError, IndexError):
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, round(cores - busy)))


def _cpu_times() -> tuple[int, int]:
    """(total, idle + iowait) jiffies of all cores since boot."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]


def _expected_time(args: argparse.Namespace) -> str:
    if args.full or None in EXPECTED_MINUTES.values():
        return "its time was not measured with these settings; each step prints its progress"
    return (f"expect about {EXPECTED_MINUTES['idle']:.1f} min on 2 idle cores, {EXPECTED_MINUTES['loaded']:.1f} "
            "beside one busy process")


def run_demo(args: argparse.Namespace) -> int:
    from snake_world_eqm.evaluation import cli as evaluate_cli
    from snake_world_eqm.evaluation import play
    from snake_world_eqm.training import main as train_main

    out = Path(args.output_dir)
    if out.exists() and not args.overwrite:
        raise SystemExit(f"snake-eqm demo: {out} exists; pass --overwrite or another --output-dir")
    _remove_previous_report(out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    print(f"snake-eqm demo: {args.threads} torch thread(s) ({args.cores_free} of {os.cpu_count()} cores free); "
          f"{_expected_time(args)}", flush=True)
    started, log = time.perf_counter(), []
    steps = args.train_steps
    dataset = _build_dataset(out, args, log)
    _train_world_model(out, dataset, args, log)
    _run_step(f"train the behaviour-cloning baseline from zero ({args.baseline_steps} steps of {args.baseline_batch_size})", train_main,
              [*_train_flags(dataset, args, args.baseline_steps, LEARNING_RATE["scratch"]), "--config-preset",
               "cpu-small", "--model", "baseline", "--batch-size", str(args.baseline_batch_size),
               "--output-dir", str(out / "baseline")],
              "snake-eqm train", log)
    _run_step("evaluate against the expert and the baseline", evaluate_cli.main,
              ["--model", str(out / "eqm"), "--baseline", str(out / "baseline"), "--dataset", str(dataset),
               "--games", str(args.games), "--max-steps", str(args.max_steps), "--max-rows", str(args.eval_rows),
               "--expert", EXPERT, "--fatal-games", str(args.fatal_games), "--threads", str(args.threads),
               "--json", str(out / "report.json"), "--plots", str(out / "plots")],
              "snake-eqm evaluate", log, quiet=True)  # its JSON goes to report.json; the summary follows
    _run_step("record a game", play.main,
              ["--model", str(out / "eqm"), "--agent", "eqm", "--seed", str(args.seed), "--max-steps", str(args.max_steps),
               "--gif", str(out / "eqm_game.gif"), "--show-prediction"],
              "snake-eqm play", log)
    (out / "commands.txt").write_text("\n".join(log) + "\n")
    report = json.loads((out / "report.json").read_text())
    verdict = _quality_verdict(report["action_accuracy"], args, steps)
    demo = {"init": args.init, "profile": "full" if args.full else "quick", "train_steps": steps,
            "baseline_steps": args.baseline_steps, "num_samples": args.num_samples, "games": args.games,
            "threads": args.threads,
            "init_description": (f"the shipped checkpoint fine-tuned for {steps} steps" if args.init == "shipped"
                                 else f"trained from zero for {steps} steps"),
            "quality_floor": args.quality_floor, "below_quality_floor": verdict is not None,
            "wall_seconds": round(time.perf_counter() - started, 1)}
    report["demo"] = demo
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n=== done in {demo['wall_seconds'] / 60:.1f} min; report in {out.resolve()}\n{_summary(report, demo)}")
    if args.init == "shipped":
        print("(the baseline trains from zero, the world model starts trained: compare agents in docs/results)")
    if verdict:
        print(verdict, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = resolve_defaults(build_parser().parse_args(argv))
    with _progress_every_few_seconds():
        return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
