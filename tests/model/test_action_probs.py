"""`sample(prob_draws=K)`: calibrated action probabilities from the votes of K noise draws."""

import numpy as np
import pytest
import torch

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.evaluation.calibration import vote_probabilities
from snake_world_eqm.game import encode_observation, new_game
from tests.model.test_bad_input_model import TINY


def _model(**overrides) -> SnakeWorldEqM:
    torch.manual_seed(0)
    return SnakeWorldEqM(SnakeWorldEqMConfig(**{**TINY, **overrides})).eval()


def _boards(count: int = 5) -> torch.Tensor:
    return torch.as_tensor(np.stack([encode_observation(new_game(6, 6, rng=seed)) for seed in range(count)]))


def test_probabilities_are_smoothed_vote_shares_and_leave_the_sample_unchanged():
    model, boards = _model(action_prob_smoothing=0.25), _boards()
    plain = model.sample(boards, generator=torch.Generator().manual_seed(3))
    out = model.sample(boards, prob_draws=6, generator=torch.Generator().manual_seed(3))
    assert plain.action_probs is None
    assert torch.equal(out.action, plain.action) and torch.equal(out.next_board, plain.next_board)
    probs = out.action_probs.numpy()
    assert probs.shape == (5, 4) and np.allclose(probs.sum(axis=1), 1.0)
    votes = probs * (6 + 4 * 0.25) - 0.25  # invert the smoothing: whole vote counts that add up to 6 per board
    assert np.allclose(votes, votes.round(), atol=1e-5) and np.allclose(votes.sum(axis=1), 6)
    assert np.allclose(vote_probabilities(votes.round(), 0.25), probs, atol=1e-6)


def test_the_smoothing_comes_from_the_config():
    boards = _boards(3)
    sharp = _model(action_prob_smoothing=1e-3).sample(boards, prob_draws=4, generator=torch.Generator().manual_seed(1))
    flat = _model(action_prob_smoothing=1e3).sample(boards, prob_draws=4, generator=torch.Generator().manual_seed(1))
    shares = sharp.action_probs.numpy() * 4  # nearly the raw vote counts of 4 draws
    assert np.allclose(shares, shares.round(), atol=0.01) and shares.round().sum(axis=1).tolist() == [4, 4, 4]
    assert torch.allclose(flat.action_probs, torch.full((3, 4), 0.25), atol=1e-3)


@pytest.mark.parametrize("bad", [-1, 2000, 1.5, True])
def test_bad_draw_counts_are_refused(bad):
    with pytest.raises(ValueError, match="prob_draws"):
        _model().sample(_boards(1), prob_draws=bad)


def test_a_smoothing_of_zero_is_refused_by_the_config():
    with pytest.raises(ValueError, match="action_prob_smoothing"):
        SnakeWorldEqMConfig(action_prob_smoothing=0.0)
