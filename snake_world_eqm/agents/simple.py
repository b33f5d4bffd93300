"""Agents without search: random, an expert (the teacher), the behaviour-cloning baseline, the EqM agent."""

from __future__ import annotations

import numpy as np
import torch

from snake_world_eqm.agents.base import (
    Agent,
    accepts_validate,
    as_numpy_long,
    check_obs,
    model_device,
    sample_model,
)
from snake_world_eqm.game.expert import expert_actions
from snake_world_eqm.game.state import NUM_ACTIONS


class RandomAgent(Agent):
    name = "random"
    deterministic = False

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, NUM_ACTIONS, size=check_obs(obs).shape[0]).astype(np.int64)


class ExpertAgent(Agent):
    """One of the rules-based experts (`game.expert.EXPERT_KINDS`): the teachers the model imitates."""

    name = "expert"

    def __init__(self, kind: str = "astar") -> None:
        self.kind = kind

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return as_numpy_long(expert_actions(check_obs(obs).astype(np.int8), kind=self.kind))


class BaselineAgent(Agent):
    """Behaviour cloning: the baseline's classification head, argmax."""

    name = "baseline"

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()
        self.extra = {"validate": False} if accepts_validate(model, "select_action") else {}

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        boards = torch.as_tensor(check_obs(obs), dtype=torch.long, device=model_device(self.model))
        # Simulator boards are legal by construction; skip the per-board Python check in the hot loop.
        return as_numpy_long(self.model.select_action(boards, **self.extra))


class EqMAgent(Agent):
    """The action the EqM sampler settles on, jointly with its predicted next board.

    `init_scale` scales the noise each descent starts from: 0 (the default) starts at the origin, which
    makes the agent deterministic and plays best (the `eqm` against `eqm-noise` rows of the evaluation:
    the same model with EqM's N(0, I) start, init_scale 1). With `votes` > 1, each board is sampled from
    that many noise draws (init_scale > 0) and the action blocks are averaged: a vote of the model's own
    samples, no lookahead, no simulator.
    """

    name = "eqm"

    def __init__(self, model, num_steps: int | None = None, adaptive_threshold: float | None = None,
                 seed: int = 0, votes: int = 1, init_scale: float = 0.0) -> None:
        if isinstance(votes, bool) or not isinstance(votes, int) or votes < 1:
            raise ValueError(f"votes must be a positive integer, got {votes!r}")
        if votes > 1 and init_scale == 0:
            raise ValueError(f"votes={votes} from the origin would be {votes} identical samples: pass init_scale > 0")
        self.model = model.eval()
        self.num_steps = num_steps
        self.adaptive_threshold = adaptive_threshold
        self.votes = votes
        self.init_scale = init_scale
        # From the origin a board always gets the same move, so a repeated board proves a loop;
        # from noise it does not.
        self.deterministic = init_scale == 0
        self.generator = torch.Generator(device=model_device(model)).manual_seed(seed)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        boards = check_obs(obs)
        if self.votes > 1:
            boards = np.repeat(boards, self.votes, axis=0)
        out = sample_model(self.model, boards, generator=self.generator, num_steps=self.num_steps,
                           adaptive_threshold=self.adaptive_threshold, init_scale=self.init_scale)
        if self.votes == 1:
            return as_numpy_long(out.action)
        blocks = out.action_logits.detach().float().view(-1, self.votes, out.action_logits.shape[-1])
        return as_numpy_long(blocks.mean(dim=1).argmax(dim=-1))
