"""One place that turns an agent's name (and a model) into an agent: used by `snake-eqm play`, `evaluate`,
the app and DAgger collection, so a name means the same player everywhere.

Names: ``eqm`` (the EqM agent from the origin), ``eqm-noise`` (from EqM's N(0, I) start),
``eqm-votesK`` (K noise draws averaged), ``planner``, ``baseline`` (behaviour cloning), ``expert`` (the
given teacher), ``expert-KIND`` (a named teacher) and ``random``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch

from snake_world_eqm.agents.base import Agent
from snake_world_eqm.agents.flags import POLICY_AGENTS, POLICY_DTYPES
from snake_world_eqm.agents.planner import PlannerAgent
from snake_world_eqm.agents.simple import BaselineAgent, EqMAgent, ExpertAgent, RandomAgent
from snake_world_eqm.game.state import EXPERT_KINDS
from snake_world_eqm.pretrained import load_config, load_model, model_kind

WORLD_MODEL_AGENTS = ("eqm", "eqm-noise", "planner")  # need a world model (plus eqm-votesK)
AGENT_NAMES = ("planner", "eqm", "eqm-noise", "baseline", "expert", *(f"expert-{k}" for k in EXPERT_KINDS), "random")
VOTING_AGENT = re.compile(r"eqm-votes([1-9]\d*)")  # the EqM agent averaging K noise draws per move



def needs_world_model(name: str) -> bool:
    return name in WORLD_MODEL_AGENTS or VOTING_AGENT.fullmatch(name) is not None


def make_agent(name: str, model=None, *, baseline=None, seed: int = 0, expert: str = "astar",
               planner_options: dict | None = None) -> Agent:
    """The agent called `name`; a ValueError names an unknown agent or a missing model.

    `model` is the world model (EqM agents, planner), `baseline` the behaviour-cloning model; `seed` seeds
    every sampler and the random agent; `expert` is the teacher behind the plain name ``expert``.
    """
    if needs_world_model(name) and model is None:
        raise ValueError(f"agent {name!r} needs a world model")
    if name == "baseline" and baseline is None:
        raise ValueError("agent 'baseline' needs a baseline model")
    if voting := VOTING_AGENT.fullmatch(name):
        return EqMAgent(model, seed=seed, votes=int(voting.group(1)), init_scale=1.0)
    if name.startswith("expert-") and name[len("expert-"):] in EXPERT_KINDS:
        return ExpertAgent(name[len("expert-"):])
    factories: dict[str, Callable[[], Agent]] = {
        "eqm": lambda: EqMAgent(model, seed=seed),
        "eqm-noise": lambda: EqMAgent(model, seed=seed, init_scale=1.0),
        "planner": lambda: PlannerAgent(model, **{"seed": seed, **(planner_options or {})}),
        "baseline": lambda: BaselineAgent(baseline),
        "expert": lambda: ExpertAgent(expert),
        "random": lambda: RandomAgent(seed),
    }
    if name not in factories:
        raise ValueError(f"unknown agent {name!r}; choose from {', '.join(AGENT_NAMES)} or eqm-votesK")
    return factories[name]()


def load_policy(path_or_repo: str, agent: str, height: int, width: int, seed: int = 0,
                dtype: str = "float32") -> Callable[[np.ndarray], np.ndarray]:
    """`act_batch` of the agent built on a checkpoint, for on-policy (DAgger) collection; every mismatch is
    a ValueError naming it.

    `agent="auto"` plays an EqM checkpoint with the EqM agent and a baseline with its classifier;
    `dtype="bfloat16"` runs it under autocast (see POLICY_DTYPES).
    """
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
        act = make_agent("baseline", baseline=model).act_batch
    else:
        act = make_agent("planner" if agent == "planner" else "eqm", model, seed=seed).act_batch
    return act if dtype == "float32" else _under_autocast(act, model.device.type)


def _under_autocast(act: Callable[[np.ndarray], np.ndarray], device_type: str) -> Callable[[np.ndarray], np.ndarray]:
    def act_in_bfloat16(boards: np.ndarray) -> np.ndarray:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return act(boards)

    return act_in_bfloat16
