"""The policy that plays on-policy (DAgger) games: a trained checkpoint wrapped as a batched callable.

The data layer (`snake_world_eqm.data.generate`) receives only the callable; this module wires a model
in, so nothing under `snake_world_eqm/data/` imports a model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

POLICY_AGENTS = ("auto", "eqm", "planner", "baseline")
# bfloat16 runs the policy under torch.autocast: 1.35x the collection rate on 2 idle cores and the same moves
# as float32 on the shipped model's on-policy states (docs/results/dagger_collect.json). It only chooses which states are
# visited; every row is still labelled by the expert, so a rare flipped near-tie costs nothing.
POLICY_DTYPES = ("float32", "bfloat16")


def load_policy(path_or_repo: str, agent: str, height: int, width: int, seed: int = 0,
                dtype: str = "float32") -> Callable[[np.ndarray], np.ndarray]:
    """`act_batch` of the agent built on the checkpoint; every mismatch is a ValueError naming it.

    `agent="auto"` plays an EqM checkpoint with the EqM agent and a baseline with its classifier;
    `dtype="bfloat16"` runs it under autocast (see POLICY_DTYPES).
    """
    from snake_world_eqm.evaluation.agents import BaselineAgent, EqMAgent, PlannerAgent
    from snake_world_eqm.pretrained import load_config, load_model, model_kind

    if agent not in POLICY_AGENTS:
        raise ValueError(f"--policy-agent must be one of {POLICY_AGENTS}, got {agent!r}")
    if dtype not in POLICY_DTYPES:
        raise ValueError(f"--policy-dtype must be one of {POLICY_DTYPES}, got {dtype!r}")
    config = load_config(path_or_repo)
    kind = model_kind(config)
    if agent in ("eqm", "planner") and kind != "eqm":
        raise ValueError(f"--policy-agent {agent} needs an EqM world model, but {path_or_repo} is a {kind} model")
    if agent == "baseline" and kind != "baseline":
        raise ValueError(f"--policy-agent baseline needs a baseline model, but {path_or_repo} is a {kind} model")
    if getattr(config, "fixed_board_size", True) and (config.board_height, config.board_width) != (height, width):
        raise ValueError(f"the policy {path_or_repo} plays {config.board_height}x{config.board_width} boards, "
                         f"but this dataset is {height}x{width}")
    model = load_model(path_or_repo, kind=kind, config=config)
    if kind == "baseline":
        act = BaselineAgent(model).act_batch
    elif agent == "planner":
        act = PlannerAgent(model, seed=seed).act_batch
    else:
        act = EqMAgent(model, seed=seed).act_batch
    return act if dtype == "float32" else _under_autocast(act, model.device.type)


def _under_autocast(act: Callable[[np.ndarray], np.ndarray], device_type: str) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def act_in_bfloat16(boards: np.ndarray) -> np.ndarray:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return act(boards)

    return act_in_bfloat16
