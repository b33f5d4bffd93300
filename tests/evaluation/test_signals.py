"""The EqM-native confidence signals (evaluation/signals.py): the implicit energy is a true line integral."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.agents import EqMAgent
from snake_world_eqm.evaluation.closed_loop import initial_boards
from snake_world_eqm.evaluation.signals import SIGNALS, descent_signals, held_action_energies


def _tiny(explicit: bool) -> SnakeWorldEqM:
    torch.manual_seed(0)
    config = SnakeWorldEqMConfig(board_height=6, board_width=6, d_model=16, num_layers=1, num_heads=2,
                                 cnn_channels=8, cnn_layers=1, latent_dim=8, latent_hidden_dim=16,
                                 decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=2,
                                 use_explicit_energy=explicit)
    return SnakeWorldEqM(config).eval()


def test_held_action_energy_is_the_explicit_energy_difference_where_one_exists():
    # With an explicit energy the field is its gradient, so the line integral must give E(end) - E(origin).
    model = _tiny(explicit=True)
    boards = initial_boards(6, 6, 6, seed=3)
    obs = torch.as_tensor(boards, dtype=torch.long)
    energies = held_action_energies(model, boards, model.encode(obs, validate=False))
    lat = model.config.latent_dim
    origin = model.energy(obs, torch.zeros(6, lat), torch.zeros(6, 4), validate=False)
    for action in range(4):
        end = model.sample(obs, action=torch.full((6,), action), init_scale=0.0, return_trajectory=True,
                           validate=False).trajectory[-1]
        expected = model.energy(obs, end[:, :lat], end[:, lat:], validate=False) - origin
        np.testing.assert_allclose(energies[:, action].detach().numpy(), expected.detach().numpy(), atol=2e-3)
    # The four actions' basins differ: the signal is not a constant.
    assert energies.std(dim=1).min() > 1e-3


@pytest.mark.parametrize("explicit", [False, True])
def test_descent_signals_follow_the_eqm_agents_own_move(explicit):
    model = _tiny(explicit)
    boards = initial_boards(20, 6, 6, seed=5)
    signals = descent_signals(model, boards, batch_size=7, max_adaptive_steps=30)
    for name in SIGNALS:
        assert signals[name].shape == (20,) and np.isfinite(signals[name]).all()
    np.testing.assert_array_equal(signals["action"], EqMAgent(model).act_batch(boards))
    own = signals["energies"][np.arange(20), signals["action"].astype(int)]
    np.testing.assert_array_equal(signals["energy_disagrees"], signals["energies"].argmin(axis=1) != signals["action"])
    others = np.where(np.eye(4, dtype=bool)[signals["action"].astype(int)], np.inf, signals["energies"]).min(axis=1)
    np.testing.assert_allclose(signals["energy_margin"], own - others, rtol=1e-5, atol=1e-5)
    assert (signals["adaptive_steps"] >= 1).all() and (signals["adaptive_steps"] <= 30).all()
    assert signals["adaptive_threshold"] == pytest.approx(0.5 * np.median(signals["grad_norm"]))
