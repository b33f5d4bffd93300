"""A perfect "world model" backed by the simulator, with the `SnakeWorldEqM.sample` interface.

It is the upper bound of what a learned model could give the planner and the metrics, and the
reference the evaluation tests check the pipeline against: with it, every metric of a perfect model
must come out perfect (action accuracy 1, what-if exact 1, validity and coherence 1).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from snake_world_eqm.game.batched import batched_step
from snake_world_eqm.game.encoding import validate_observation
from snake_world_eqm.game.expert import expert_actions


class OracleWorldModel(torch.nn.Module):
    """`sample(obs, action=None, ...)`: the expert's action (unless held) and the true next board."""

    def __init__(self, height: int, width: int, seed: int = 0, expert: str = "astar") -> None:
        super().__init__()
        self._anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the model a device
        self.config = SimpleNamespace(board_height=height, board_width=width, eqm_sampling_steps=10,
                                      eqm_adaptive_threshold=None, use_explicit_energy=False)
        self.expert = expert
        self.rng = np.random.default_rng(seed)  # food respawn of predicted boards: the model's own guess
        self.sample_calls = 0

    def sample(self, obs, action=None, num_steps=None, step_size=None, momentum=None, adaptive_threshold=None,
               generator=None, return_trajectory=False, validate=False, init_scale=1.0):
        boards = np.asarray(obs.cpu() if isinstance(obs, torch.Tensor) else obs).astype(np.int8)
        if boards.ndim == 2:
            boards = boards[None]
        self.sample_calls += 1
        # An illegal input (the energy metric's corrupted boards) has no true successor: predict the
        # terminal board and action 0, and keep the simulator away from it.
        legal = self._legal(boards)
        chosen = np.zeros(boards.shape[0], dtype=np.int64)
        if action is not None:
            held = np.asarray(action.cpu() if isinstance(action, torch.Tensor) else action, dtype=np.int64)
            chosen[:] = np.broadcast_to(held, (boards.shape[0],))
        elif legal.any():
            chosen[legal] = np.asarray(expert_actions(boards[legal], kind=self.expert), dtype=np.int64)
        next_boards = np.zeros_like(boards)
        if legal.any():
            next_boards[legal] = batched_step(boards[legal], chosen[legal], self.rng)[0]
        steps = int(num_steps or self.config.eqm_sampling_steps)
        logits = torch.nn.functional.one_hot(torch.as_tensor(chosen), 4).float() * 5.0
        return SimpleNamespace(
            action=torch.as_tensor(chosen), action_logits=logits,
            latent_next=torch.zeros(boards.shape[0], 1), next_board=torch.as_tensor(next_boards.astype(np.int64)),
            num_steps=torch.full((boards.shape[0],), steps), grad_norm=torch.rand(boards.shape[0], generator=generator),
            trajectory=None)

    @staticmethod
    def _legal(boards: np.ndarray) -> np.ndarray:
        legal = np.ones(boards.shape[0], dtype=bool)
        for index, board in enumerate(boards):
            try:
                validate_observation(board, allow_terminal=True)
            except ValueError:
                legal[index] = False
        return legal

    def select_action(self, obs) -> torch.Tensor:
        return self.sample(obs).action
