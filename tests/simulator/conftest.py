"""The tiny random world model the simulator tests share."""

from __future__ import annotations

import pytest
import torch

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig

TINY = dict(board_height=6, board_width=6, d_model=16, num_layers=1, num_heads=2, latent_dim=8, eqm_hidden_dim=16,
            eqm_num_layers=1, decoder_channels=8, decoder_layers=1, eqm_sampling_steps=3)


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return SnakeWorldEqM(SnakeWorldEqMConfig(**TINY)).eval()
