"""Stand-in world models for the dream beside the real game (tests/simulator, tests/app, play --dream): one whose
every prediction is the real next board, food included, and one that corrupts its predictions on chosen calls."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import FOOD, HEAD_UP


class ExactModel(OracleWorldModel):
    """The rules as a world model whose food draws are the real game's: seeded like the game's food generator
    (`np.random.default_rng(seed)`; a batch of one draws food exactly as `game.step`), and whose decoder puts all
    of its food probability on the food cell it predicted. With an agent that never calls the model (the
    expert), its dream is the real game, food included."""

    def sample(self, obs, action=None, **kwargs):
        out = super().sample(obs, action=action, **kwargs)
        out.action_grad_norm = torch.zeros(out.action.shape[0])
        self.last_boards = out.next_board.clone()
        return out

    def from_latent(self, latent, boards):
        return torch.nn.functional.one_hot(self.last_boards.long(), 12).float() * 50.0


class CorruptingModel(ExactModel):
    """`ExactModel`, but the predictions of the dream calls listed in `corrupt` (1-based: the n-th call
    with a held action) get a second head on an empty cell: an illegal board."""

    def __init__(self, height, width, seed=0, corrupt=(3,)):
        super().__init__(height, width, seed)
        self.corrupt, self.held_calls = set(corrupt), 0

    def sample(self, obs, action=None, **kwargs):
        out = super().sample(obs, action=action, **kwargs)
        if action is None:
            return out
        self.held_calls += 1
        if self.held_calls not in self.corrupt:
            return out
        boards = out.next_board.numpy().copy()
        for board in boards:
            board[tuple(np.argwhere(board == 0)[0])] = HEAD_UP
        self.last_boards = torch.as_tensor(boards)
        return SimpleNamespace(**{**vars(out), "next_board": torch.as_tensor(boards)})


def food_cell(board) -> tuple[int, int] | None:
    cells = np.argwhere(np.asarray(board) == FOOD)
    return tuple(int(v) for v in cells[0]) if len(cells) else None
