"""The planner's command-line flags, shared by `snake-eqm play`, `snake-eqm evaluate` and the benchmarks.

Kept free of torch and the model code so that `--help` answers at once; `PlannerConfig` is imported only
when flags are turned into options.
"""

from __future__ import annotations

import argparse

# Bounds on the search: a decision costs about 4 x rollouts x horizon samples, so these keep one step of play
# to seconds at worst on a CPU (an unbounded depth once made `play` never finish a step).
MAX_HORIZON, MAX_ROLLOUTS = 64, 32


def _int_from(low: int, high: int):
    """An argparse type: an integer in [low, high] (argparse then exits 2 naming the flag)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


PLANNER_FLAGS = {  # flag -> (PlannerConfig field, type, help); defaults are PlannerConfig's (the best measured)
    "--planner-horizon": ("horizon", _int_from(1, MAX_HORIZON), "imagined steps per line"),
    "--planner-rollouts": ("rollouts", _int_from(1, MAX_ROLLOUTS),
                           "model-play lines per first action in a search (one tail-following line is added)"),
    "--planner-gate": ("gate", str, "risk: search only where the plan is risky or play stalls (default); "
                       "always: search every move"),
    "--planner-gate-seeds": ("gate_seeds", _int_from(0, 16), "extra noise seeds per move; search where they disagree"),
    "--planner-num-steps": ("num_steps", _int_from(1, 100), "sampler steps inside the planner (default: the model's)"),
    "--planner-init-scale": ("init_scale", _non_negative_float,
                             "where the plan's imagined steps start their descent: 1 EqM's noise, 0 the origin"),
    "--planner-search-init-scale": ("search_init_scale", _non_negative_float,
                                    "the same for the search's lines (default: --planner-init-scale)"),
    "--planner-stall-init-scale": ("stall_init_scale", _non_negative_float,
                                   "the same for searches while play stalls (default: the search's)"),
}


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    """The planner's knobs as flags; left out, `PlannerConfig`'s defaults (the best measured) apply."""
    group = parser.add_argument_group("planner (defaults: PlannerConfig, the best measured planner)")
    for flag, (_, kind, text) in PLANNER_FLAGS.items():
        group.add_argument(flag, type=kind, default=None, help=text)


def planner_options_from_args(args: argparse.Namespace) -> dict:
    """PlannerConfig overrides from parsed flags; a bad value exits with a one-line error naming its flag."""
    from snake_world_eqm.planning import PlannerConfig

    options = {}
    for flag, (name, _, _) in PLANNER_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        try:
            PlannerConfig(**{name: value})
        except ValueError as error:
            raise SystemExit(f"{flag} {value}: {error}") from None
        options[name] = value
    return options


def add_thread_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_int_from(1, 256), default=1,
                        help="torch CPU threads (default 1: batch-1 play is fastest on one thread, and far "
                        "slower with many on a busy machine)")


def set_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)
