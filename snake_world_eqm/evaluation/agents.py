"""Agents with one interface: ``act(state) -> int`` and ``act_batch(obs (B,H,W) int8) -> (B,) int64``.

`PlannerAgent` plans inside the world model only (imagined rollouts from `model.sample`, see
`snake_world_eqm.planning`); it never calls the simulator.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from snake_world_eqm.game.encoding import EMPTY, FOOD, HEAD_ALONE, HEAD_LEFT, HEAD_UP, TAIL

NUM_ACTIONS = 4


def _check_obs(obs: np.ndarray) -> np.ndarray:
    array = np.asarray(obs)
    if array.ndim != 3:
        raise ValueError(f"act_batch expects observations of shape (B, H, W), got {array.shape}")
    return array


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # a parameter-free stand-in
        return torch.device("cpu")


def _as_long(tensor_or_array) -> np.ndarray:
    if isinstance(tensor_or_array, torch.Tensor):
        return tensor_or_array.detach().cpu().numpy().astype(np.int64)
    return np.asarray(tensor_or_array).astype(np.int64)


class Agent:
    """Base class: subclasses implement `act_batch`; `act` plays one `SnakeState`."""

    name = "agent"
    deterministic = True  # a repeated board then proves a loop (closed-loop play uses this)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def act(self, state) -> int:
        from snake_world_eqm.game import encode_observation

        return int(self.act_batch(encode_observation(state)[None])[0])


class RandomAgent(Agent):
    name = "random"
    deterministic = False

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, NUM_ACTIONS, size=_check_obs(obs).shape[0]).astype(np.int64)


class ExpertAgent(Agent):
    name = "expert"

    def __init__(self, kind: str = "astar") -> None:
        self.kind = kind

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        from snake_world_eqm.game import expert_actions

        return _as_long(expert_actions(_check_obs(obs).astype(np.int8), kind=self.kind))


class BaselineAgent(Agent):
    """Behaviour cloning: the baseline's classification head, argmax."""

    name = "baseline"

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        boards = torch.as_tensor(_check_obs(obs), dtype=torch.long, device=_model_device(self.model))
        # Simulator boards are legal by construction; skip the per-board Python check in the hot loop.
        extra = {"validate": False} if _accepts_validate(self.model.select_action) else {}
        return _as_long(self.model.select_action(boards, **extra))


def _accepts_validate(method) -> bool:
    return "validate" in inspect.signature(method).parameters


def sample_model(model, boards: np.ndarray, generator: torch.Generator | None = None, **kwargs):
    """`model.sample` on numpy boards, on the model's device.

    The legality check is turned off: play feeds simulator boards (legal by construction), the planner
    feeds the model's own predictions (which may be illegal, and must still be scored, not rejected), and
    the energy metric feeds deliberately corrupted boards.
    """
    device = _model_device(model)
    if _accepts_validate(model.sample):
        kwargs.setdefault("validate", False)
    obs = torch.as_tensor(np.asarray(boards), dtype=torch.long, device=device)
    action = kwargs.pop("action", None)
    if action is not None:
        action = torch.as_tensor(np.asarray(action), dtype=torch.long, device=device)
    # sample() may use autograd internally (an explicit energy), so no torch.no_grad() here.
    return model.sample(obs, action=action, generator=generator, **kwargs)


class EqMAgent(Agent):
    """The action the EqM sampler settles on, jointly with its predicted next board.

    `init_scale` scales the noise each descent starts from: 0 (the default) starts at the origin, which
    makes the agent deterministic and plays best (docs/results/eval_10x10.json: `eqm` against `eqm-noise`,
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
        self.generator = torch.Generator(device=_model_device(model)).manual_seed(seed)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        boards = _check_obs(obs)
        if self.votes > 1:
            boards = np.repeat(boards, self.votes, axis=0)
        out = sample_model(self.model, boards, generator=self.generator, num_steps=self.num_steps,
                           adaptive_threshold=self.adaptive_threshold, init_scale=self.init_scale)
        if self.votes == 1:
            return _as_long(out.action)
        blocks = out.action_logits.detach().float().view(-1, self.votes, out.action_logits.shape[-1])
        return _as_long(blocks.mean(dim=1).argmax(dim=-1))


def neck_directions(boards: np.ndarray) -> np.ndarray:
    """(N,) the action that reverses into the neck, read from the head's pointer; -1 for a lone head.

    That move is death by the rules whatever the model says, so the planner need not spend a sample on it.
    """
    flat = np.asarray(boards).reshape(len(boards), -1)
    is_pointer_head = (flat >= HEAD_UP) & (flat <= HEAD_LEFT)
    codes = flat[np.arange(flat.shape[0]), is_pointer_head.argmax(axis=1)]
    return np.where(is_pointer_head.any(axis=1), codes - HEAD_UP, -1)


def _shift(mask: np.ndarray, d_row: int, d_col: int) -> np.ndarray:
    """Move a (N,H,W) mask by one cell without wrap-around."""
    out = np.zeros_like(mask)
    rows, cols = mask.shape[1], mask.shape[2]
    src_r = slice(max(0, -d_row), rows - max(0, d_row))
    dst_r = slice(max(0, d_row), rows - max(0, -d_row))
    src_c = slice(max(0, -d_col), cols - max(0, d_col))
    dst_c = slice(max(0, d_col), cols - max(0, -d_col))
    out[:, dst_r, dst_c] = mask[:, src_r, src_c]
    return out


def bfs_from_head(boards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched breadth-first search from the head over cells the head may enter.

    Returns (distance (N,H,W) int, -1 where unreachable; has_head (N,) bool). The tail counts as free
    because it moves away in the step the head would reach it (apart from eating; a heuristic).
    """
    boards = np.asarray(boards)
    head = (boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)
    passable = (boards == EMPTY) | (boards == FOOD) | (boards == TAIL)
    return grid_distances(head, passable), head.any(axis=(1, 2))


def grid_distances(sources: np.ndarray, passable: np.ndarray) -> np.ndarray:
    """(N, H, W) breadth-first steps from the `sources` cells through `passable` cells; -1 where unreachable."""
    distance = np.where(sources, 0, -1)
    visited, frontier = sources.copy(), sources.copy()
    for step in range(1, sources.shape[1] * sources.shape[2] + 1):
        grown = _shift(frontier, -1, 0) | _shift(frontier, 1, 0) | _shift(frontier, 0, -1) | _shift(frontier, 0, 1)
        frontier = grown & passable & ~visited
        if not frontier.any():
            break
        distance[frontier] = step
        visited |= frontier
    return distance


def board_heuristic(boards: np.ndarray, food_weight: float, trap_penalty: float, space_weight: float = 0.0,
                    tail_weight: float = 0.0) -> np.ndarray:
    """(N,) value of a predicted board: near reachable food is good; a tail cut off from the head is a trap;
    optionally, more room to move (`space_weight`) and a longer way round to the tail (`tail_weight`:
    the classic way to stall safely while the food is out of reach) are good."""
    height, width = boards.shape[1], boards.shape[2]
    distance, has_head = bfs_from_head(boards)
    reach_food = np.where((boards == FOOD) & (distance >= 0), distance, np.iinfo(np.int64).max).min(axis=(1, 2))
    food_reachable = reach_food < np.iinfo(np.int64).max
    food_term = np.where(food_reachable, food_weight * (1.0 - reach_food / (height * width)), 0.0)
    has_tail = (boards == TAIL).any(axis=(1, 2))
    tail_reached = ((boards == TAIL) & (distance >= 0)).any(axis=(1, 2))
    trapped = has_tail & ~tail_reached
    cells = height * width
    space_term = space_weight * (distance >= 0).sum(axis=(1, 2)) / cells
    tail_distance = np.where((boards == TAIL) & (distance >= 0), distance, 0).max(axis=(1, 2))
    tail_term = tail_weight * tail_distance / cells
    # A board with no head is an illegal prediction: value it as a trap, the model cannot be trusted there.
    return food_term + space_term + tail_term + np.where(trapped | ~has_head, trap_penalty, 0.0)


class PlannerAgent(Agent):
    """Model-predictive planning inside the world model (`snake_world_eqm.planning.ModelPlanner`).

    `PlannerAgent(model)` is the best planner measured; keyword arguments override `PlannerConfig`
    (horizon, rollouts, gate, gate_seeds, ...). It never calls the simulator: every board it looks at
    comes from `model.sample`. `stats` holds its cost (samples, field evaluations, searches, time).
    """

    name = "planner"
    deterministic = False  # the model samples from noise

    def __init__(self, model, config=None, **knobs) -> None:
        from snake_world_eqm.planning import ModelPlanner

        self.planner = ModelPlanner(model, config, **knobs)
        self.model = self.planner.model

    @property
    def config(self):
        return self.planner.config

    @property
    def stats(self):
        return self.planner.stats

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return self.planner.act(_check_obs(obs))
