"""`python -m dataset_builder [build] ...`, `python -m dataset_builder validate PATH_OR_REPO`,
`python -m dataset_builder push PATH --repo-id ID`, `python -m dataset_builder merge SHARD ... --output OUT`.

The seed's command works as written::

    python -m dataset_builder --num-samples 10000 --output snake_world_dataset --use-astar --augment
"""

from __future__ import annotations

import argparse
import shlex
import sys

from snake_world_eqm.argtypes import board_size as _board_size
from snake_world_eqm.argtypes import non_negative_int as _non_negative_int
from snake_world_eqm.argtypes import positive_int as _positive_int
from snake_world_eqm.argtypes import probability as _probability
from snake_world_eqm.argtypes import seed as _seed
from snake_world_eqm.game.state import DEFAULT_EXPERT, EXPERT_KINDS

# The builder, `datasets`, torch and the Hub client load after parsing, so every `--help` answers at once.

COMMANDS = ("build", "validate", "push", "merge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dataset_builder", description="Build the Snake world-model dataset.")
    size = parser.add_argument_group("game")
    size.add_argument("--num-samples", type=_positive_int, default=10_000, help="rows before augmentation (default 10000)")
    size.add_argument("--height", type=_positive_int, default=10)
    size.add_argument("--width", type=_positive_int, default=10)
    size.add_argument("--seed", type=_seed, default=0)
    expert = size.add_mutually_exclusive_group()
    expert.add_argument(
        "--expert", choices=EXPERT_KINDS, default=DEFAULT_EXPERT,
        help=f"the expert that labels the rows: {', '.join(EXPERT_KINDS)} (default {DEFAULT_EXPERT}: the teacher the "
             "shipped models learned from, the one a learner imitates best; `fill` plays best itself)",
    )
    expert.add_argument("--use-astar", dest="expert", action="store_const", const="astar", help="the A* expert (same as --expert astar)")
    expert.add_argument("--no-astar", dest="expert", action="store_const", const="heuristic", help="heuristic expert")
    size.add_argument("--perturb-prob", type=_probability, default=0.1, help="chance of a random non-fatal action per step")
    size.add_argument("--max-episode-steps", type=_positive_int, default=None, help="episode cap (default 20 x cells)")
    size.add_argument("--stall-steps", type=_positive_int, default=None, help="cut an episode after this many steps without food (default 2 x cells)")
    size.add_argument("--initial-length", type=_positive_int, default=3, help="snake length at the start of each episode")
    size.add_argument("--one-cell-fraction", type=_probability, default=None,
                      help="start this share of the episodes from a one-cell snake (reversal is legal at length 1)")
    onpolicy = parser.add_argument_group("on-policy data (DAgger): a trained model plays, the expert labels every state")
    onpolicy.add_argument("--policy", metavar="PATH_OR_REPO_ID", default=None,
                          help="trained checkpoint (folder or Hub repo id) that plays the games")
    onpolicy.add_argument("--beta", type=_probability, default=None,
                          help="probability that the expert plays a step instead of the policy (default 0.5 with --policy)")
    onpolicy.add_argument("--policy-agent", choices=("auto", "eqm", "planner", "baseline"), default="auto",
                          help="how the policy acts: auto = EqM agent for an EqM model, classifier for a baseline")
    onpolicy.add_argument("--policy-dtype", choices=("float32", "bfloat16"), default="float32",
                          help="run the policy in bfloat16 autocast (faster on CPU: docs/results/dagger_collect.json); the expert still labels every row")
    multi = parser.add_argument_group("several board sizes (one config per size; replaces --height/--width)")
    multi.add_argument("--board-sizes", nargs="+", type=_board_size, default=None, metavar="HxW",
                       help="build one config per size, e.g. 6x6 8x8 10x10 8x12; --num-samples is shared equally")
    multi.add_argument("--rows-per-size", nargs="+", type=_size_rows, default=[], metavar="HxW=N",
                       help="rows (before augmentation) of the named sizes; the others get --num-samples / sizes")
    data = parser.add_argument_group("dataset")
    data.add_argument("--output", default="snake_world_dataset", help="output folder (Hub-shaped: README.md + data/*.parquet)")
    data.add_argument("--augment", action="store_true", help="add the 8 symmetries of the (square) board")
    data.add_argument("--train-fraction", type=_probability, default=0.9)
    data.add_argument("--validation-fraction", type=_probability, default=0.05)
    data.add_argument("--test-fraction", type=_probability, default=0.05)
    data.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    run = parser.add_argument_group("execution")
    run.add_argument("--num-proc", type=_positive_int, default=1, help="processes (does not change the data)")
    run.add_argument("--shard-index", type=_non_negative_int, default=0, help="which seed-range shard to build")
    run.add_argument("--num-shards", type=_positive_int, default=1)
    run.add_argument("--rows-per-chunk", type=_positive_int, default=200_000, help="rows per seeded chunk (changes the data)")
    run.add_argument("--parallel-games", type=_positive_int, default=None, help="games stepped at once per chunk (changes the data)")
    run.add_argument("--no-progress", action="store_true")
    hub = parser.add_argument_group("hub")
    hub.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="push the folder to this dataset repo")
    hub.add_argument("--private", action="store_true")
    return parser


def _size_rows(text: str) -> tuple[tuple[int, int], int]:
    """"HxW=N" for --rows-per-size."""
    size, _, rows = text.partition("=")
    if not rows:
        raise argparse.ArgumentTypeError(f"expected HxW=ROWS, got {text!r}")
    return _board_size(size), _positive_int(rows)


def config_from_args(args: argparse.Namespace):
    """The generation config; with --policy, the checkpoint is loaded and checked here (before any output)."""
    from snake_world_eqm.data.generate import GenerationConfig

    policy = None
    if args.beta is not None and args.policy is None:
        raise ValueError("--beta only makes sense with --policy")
    beta = 0.5 if args.beta is None else args.beta
    if args.policy is not None:
        if not 0.0 <= beta <= 1.0:  # checked before the model loads
            raise ValueError(f"--beta must be in [0, 1] (the probability that the expert plays a step), got {beta}")
        if args.num_proc != 1:
            raise ValueError("--policy plays in one process (the model batches across games already); drop --num-proc")
        from snake_world_eqm.agents.factory import load_policy

        policy = load_policy(args.policy, args.policy_agent, args.height, args.width, seed=args.seed,
                             dtype=args.policy_dtype)
    return GenerationConfig(
        num_samples=args.num_samples,
        height=args.height,
        width=args.width,
        seed=args.seed,
        expert=args.expert,
        perturb_prob=args.perturb_prob,
        max_episode_steps=args.max_episode_steps,
        stall_steps=args.stall_steps,
        split_fractions=(args.train_fraction, args.validation_fraction, args.test_fraction),
        augment=args.augment,
        rows_per_chunk=args.rows_per_chunk,
        parallel_games=args.parallel_games,
        initial_length=args.initial_length,
        one_cell_fraction=args.one_cell_fraction,
        beta=beta if policy is not None else 1.0,
        policy_name=args.policy,
        policy=policy,
    )


def build_main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .builder import build_dataset

    if args.private and not args.push_to_hub:
        parser.error("--private only makes sense with --push-to-hub")
    if args.board_sizes is not None:
        return _build_multisize(parser, args, argv)
    if args.rows_per_size:
        parser.error("--rows-per-size needs --board-sizes")
    try:
        if args.push_to_hub:
            _check_push_target(args.push_to_hub)
        config = config_from_args(args)
        command = "python -m dataset_builder " + shlex.join(argv)
        result = build_dataset(
            config, args.output, num_proc=args.num_proc, shard_index=args.shard_index, num_shards=args.num_shards,
            overwrite=args.overwrite, progress=not args.no_progress, command=command,
        )
    except (ValueError, OSError) as error:
        return _fail(parser, error)
    sizes = ", ".join(f"{split} {rows}" for split, rows in result.stats.rows.items())
    print(f"wrote {result.stats.total_rows} rows ({sizes}) to {result.path}")
    if args.push_to_hub:
        try:
            _push(result.path, args.push_to_hub, args.private)
        except (ValueError, OSError) as error:
            return _fail(parser, error)
    return 0


def _build_multisize(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> int:
    """`--board-sizes ...`: one config per size in one folder (dataset_builder/multisize.py)."""
    from .multisize import build_multisize_dataset, rows_per_size, size_configs

    if args.num_shards != 1 or args.shard_index != 0:
        parser.error("--board-sizes builds the whole dataset; seed-range shards (--num-shards) are for one size")
    try:
        rows = rows_per_size(args.board_sizes, args.num_samples, dict(args.rows_per_size))
        configs = size_configs(config_from_args(args), rows)
        result = build_multisize_dataset(
            configs, args.output, num_proc=args.num_proc, overwrite=args.overwrite, progress=not args.no_progress,
            command="python -m dataset_builder " + shlex.join(argv),
        )
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        parser.error(str(error))
    sizes = ", ".join(f"{name} {stats.total_rows}" for name, stats in result.stats.items())
    print(f"wrote {result.total_rows} rows ({sizes}) to {result.path}")
    if args.push_to_hub:
        _push(result.path, args.push_to_hub, args.private)
    return 0


def _push(folder, repo_id: str, private: bool, dry_run: bool = False, token: str | None = None) -> None:
    """Card + data/*.parquet only (the allow-list of snake_world_eqm.hub), after the repo id and Hub access checks."""
    from snake_world_eqm.hub import print_upload_plan, push_folder

    result = push_folder(folder, repo_id, repo_type="dataset", private=private, token=token, dry_run=dry_run,
                         commit_message="Upload Snake world-model dataset")
    if dry_run:
        print_upload_plan(folder, result)
        return
    print(f"pushed {folder} to https://huggingface.co/datasets/{repo_id}")


def _check_push_target(repo_id: str) -> None:
    """Before a build that ends in a push: a bad repo id, no token or no connection fail in seconds."""
    from huggingface_hub import HfApi

    from snake_world_eqm.hub import check_hub_access, check_repo_id

    check_repo_id(repo_id)
    check_hub_access(HfApi())


def validate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataset_builder validate", description="Re-simulate every row.")
    parser.add_argument("path_or_repo", help="a dataset folder or a Hub dataset repo id")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from .validate import validate_dataset

    if args.no_progress:
        import datasets

        datasets.disable_progress_bars()  # also the "Generating split" bars of the first load
    try:
        report = validate_dataset(args.path_or_repo, progress=not args.no_progress)
    except (ValueError, OSError) as error:
        return _fail(parser, error)
    print(report.summary())
    return 1 if report.violations else 0


def push_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataset_builder push", description="Push a built dataset folder.")
    parser.add_argument("path")
    parser.add_argument("--repo-id", required=True)
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--token", default=None, help="defaults to the cached login / HF_TOKEN")
    parser.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded, upload nothing")
    args = parser.parse_args(argv)
    try:
        _push(args.path, args.repo_id, args.private, dry_run=args.dry_run, token=args.token)
    except (ValueError, OSError) as error:
        return _fail(parser, error)
    return 0


def merge_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_builder merge",
        description="Merge the folders of a sharded build (--shard-index/--num-shards) into one dataset folder "
                    "whose card describes the whole dataset (dataset_builder/merge.py).")
    parser.add_argument("shards", nargs="+", metavar="SHARD_FOLDER", help="every shard folder of one build, any order")
    parser.add_argument("--output", required=True, help="the merged dataset folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from .merge import merge_shards

    try:
        result = merge_shards(args.shards, args.output, overwrite=args.overwrite, progress=not args.no_progress,
                              command="python -m dataset_builder merge " + shlex.join(argv))
    except (ValueError, OSError) as error:
        return _fail(parser, error)
    sizes = ", ".join(f"{split} {rows}" for split, rows in result.stats.rows.items())
    print(f"merged {len(args.shards)} shards: {result.stats.total_rows} rows ({sizes}) in {result.path}")
    return 0


def _fail(parser: argparse.ArgumentParser, error: Exception) -> int:
    """A bad input found after parsing: one line naming it (no usage block), SystemExit(2) as argparse's own."""
    parser.exit(2, f"{parser.prog}: error: {error}\n")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "validate":
        return validate_main(argv[1:])
    if argv and argv[0] == "push":
        return push_main(argv[1:])
    if argv and argv[0] == "merge":
        return merge_main(argv[1:])
    if argv and argv[0] == "dagger":
        from .dagger import main as dagger_main

        return dagger_main(argv[1:])
    if argv and argv[0] == "build":
        argv = argv[1:]
    return build_main(argv)


if __name__ == "__main__":
    sys.exit(main())
