"""The planner's and the play threads' command-line flags, shared by `snake-eqm play`, `snake-eqm evaluate`
and the benchmarks.

Free of torch and of the planner itself so that `--help` answers at once; the flags become
`PlannerConfig` overrides with `agents.planner.planner_options_from_args` after parsing.
"""

from __future__ import annotations

import argparse

from snake_world_eqm.argtypes import int_in_range, non_negative_float

# Bounds on the search: a decision costs about 4 x rollouts x horizon samples, so these keep one step of play
# to seconds at worst on a CPU (an unbounded depth once made `play` never finish a step).
MAX_HORIZON, MAX_ROLLOUTS = 64, 32

# The agents that can play a DAgger round's on-policy games, and the precision they play in: bfloat16 runs the
# policy under torch.autocast; it only chooses which states are visited (every row is still labelled by the
# expert), and it collects faster on CPU (docs/results/dagger_collect.json).
POLICY_AGENTS = ("auto", "eqm", "planner", "baseline")
POLICY_DTYPES = ("float32", "bfloat16")

PLANNER_FLAGS = {  # flag -> (PlannerConfig field, type, help); defaults are PlannerConfig's (the best measured)
    "--planner-horizon": ("horizon", int_in_range(1, MAX_HORIZON), "imagined steps per line"),
    "--planner-rollouts": ("rollouts", int_in_range(1, MAX_ROLLOUTS),
                           "model-play lines per first action in a search (one tail-following line is added)"),
    "--planner-gate": ("gate", str, "risk: search only where the plan is risky or play stalls (default); "
                       "always: search every move"),
    "--planner-gate-seeds": ("gate_seeds", int_in_range(0, 16),
                             "extra noise seeds per move; search where they disagree"),
    "--planner-num-steps": ("num_steps", int_in_range(1, 100), "sampler steps inside the planner (default: the model's)"),
    "--planner-init-scale": ("init_scale", non_negative_float,
                             "where the plan's imagined steps start their descent: 1 EqM's noise, 0 the origin"),
    "--planner-search-init-scale": ("search_init_scale", non_negative_float,
                                    "the same for the search's lines (default: --planner-init-scale)"),
    "--planner-stall-init-scale": ("stall_init_scale", non_negative_float,
                                   "the same for searches while play stalls (default: the search's)"),
}


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    """The planner's knobs as flags; left out, `PlannerConfig`'s defaults (the best measured) apply."""
    group = parser.add_argument_group("planner (defaults: PlannerConfig, the best measured planner)")
    for flag, (_, kind, text) in PLANNER_FLAGS.items():
        group.add_argument(flag, type=kind, default=None, help=text)


def add_thread_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int_in_range(1, 256), default=1,
                        help="torch CPU threads (default 1: batch-1 play is fastest on one thread, and far "
                        "slower with many on a busy machine)")


def set_threads(count: int) -> None:
    import torch  # after parsing: `--help` must not wait for torch

    torch.set_num_threads(count)
