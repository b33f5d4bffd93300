"""The policy that plays on-policy (DAgger) games: a trained checkpoint wrapped as a batched callable.

The data layer (`snake_world_eqm.data.generate`) receives only the callable; this module wires a model
in, so nothing under `snake_world_eqm/data/` imports a model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

POLICY_AGENTS = ("auto", "eqm", "planner", "baseline")


def load_policy(path_or_repo: str, agent: str, height: int, width: int, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """`act_batch` of the agent built on the checkpoint; every mismatch is a ValueError naming it.

    `agent="auto"` plays an EqM checkpoint with the EqM agent and a baseline with its classifier.
    """
    from snake_world_eqm.evaluation.agents import BaselineAgent, EqMAgent, PlannerAgent
    from snake_world_eqm.pretrained import load_config, load_model, model_kind

    if agent not in POLICY_AGENTS:
        raise ValueError(f"--policy-agent must be one of {POLICY_AGENTS}, got {agent!r}")
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
        return BaselineAgent(model).act_batch
    if agent == "planner":
        return PlannerAgent(model, seed=seed).act_batch
    return EqMAgent(model, seed=seed).act_batch
