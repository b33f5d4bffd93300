"""What the search-free agents promise their callers (issue #33: the mutation run of agents/simple.py and
agents/base.py found these promises unchecked).

Stand-in models record what reaches `sample()`, so each test states a promise an evaluation or the planner
relies on: the agent's own settings and seeded noise reach the sampler, the vote averages the action blocks
of its draws, boards cross to the model's device as long tensors, and play skips the legality check.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from snake_world_eqm import SnakePolicyBaseline, SnakePolicyBaselineConfig
from snake_world_eqm.agents import BaselineAgent, EqMAgent, ExpertAgent, RandomAgent
from snake_world_eqm.agents.base import model_device, sample_model
from snake_world_eqm.evaluation.closed_loop import initial_boards
from snake_world_eqm.game import HEAD_RIGHT, batched_step
from snake_world_eqm.game.expert import expert_actions


def _boards(count: int = 64, size: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    boards = initial_boards(count, size, size, seed)
    for _ in range(10):  # a few expert moves: snakes of several lengths, pointing every way
        boards, *_ = batched_step(boards, expert_actions(boards, "route"), rng)
    return boards


class RecordingModel(torch.nn.Module):
    """Answers `sample` with an action drawn from the generator it was given (argmax of 4 normals), and
    remembers every call's keyword arguments and tensors."""

    def __init__(self, device: str = "cpu", logits: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1, device=device))
        self.logits, self.calls = logits, []

    def sample(self, obs, action=None, generator=None, validate=True, **kwargs):
        self.calls.append({"obs": obs, "action": action, "generator": generator, "validate": validate, **kwargs})
        if obs.device.type == "meta":
            return SimpleNamespace(action=torch.zeros(obs.shape[0], dtype=torch.long))
        logits = self.logits if self.logits is not None else torch.randn(obs.shape[0], 4, generator=generator)
        return SimpleNamespace(action=logits.argmax(-1), action_logits=logits)


class NoValidateModel(torch.nn.Module):
    """A stand-in whose `sample` has no `validate` parameter (third-party models may not)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def sample(self, obs, action=None, generator=None, **kwargs):
        self.calls.append(kwargs)
        return SimpleNamespace(action=torch.zeros(obs.shape[0], dtype=torch.long))


# ----------------------------------------------------------------------------------------------------------
# RandomAgent, ExpertAgent, BaselineAgent


def test_random_agent_is_reproducible_per_seed_and_uses_every_action():
    boards = _boards(400)
    first, again = RandomAgent().act_batch(boards), RandomAgent().act_batch(boards)
    np.testing.assert_array_equal(first, again)  # an evaluation's random column is the same on every run
    assert not np.array_equal(RandomAgent(seed=1).act_batch(boards), first)
    assert set(first.tolist()) == {0, 1, 2, 3}  # uniform over all four moves, up (0) included
    counts = np.bincount(first, minlength=4)
    assert counts.min() > 60  # 400 draws: each move about 100 times


def test_expert_agent_plays_the_kind_it_was_given():
    boards = _boards(200)
    for kind in ("route", "fill", "astar"):
        np.testing.assert_array_equal(ExpertAgent(kind).act_batch(boards), expert_actions(boards, kind))
    # The kinds disagree on these boards, so an agent that dropped its kind would be caught above.
    assert not np.array_equal(expert_actions(boards, "route"), expert_actions(boards, "astar"))


def _tiny_baseline(size: int = 8) -> SnakePolicyBaseline:
    torch.manual_seed(0)
    config = SnakePolicyBaselineConfig(board_height=size, board_width=size, d_model=16, num_layers=1, num_heads=2,
                                       cnn_channels=8, cnn_layers=1, head_hidden_dim=16)
    return SnakePolicyBaseline(config)


def test_baseline_agent_plays_the_argmax_of_its_model_in_eval_mode():
    model = _tiny_baseline().train()
    boards = _boards(32)
    agent = BaselineAgent(model)
    assert not model.training  # dropout off: the same board always gets the same move
    with torch.no_grad():
        logits = model(torch.as_tensor(boards, dtype=torch.long)).logits
    np.testing.assert_array_equal(agent.act_batch(boards), logits.argmax(-1).numpy())


class NoValidateBaseline(torch.nn.Module):
    """A stand-in policy whose `select_action` takes no `validate` (models from elsewhere may not)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def select_action(self, obs):
        return torch.full((obs.shape[0],), 2, dtype=torch.long)


def test_baseline_agent_plays_a_policy_without_a_validate_flag():
    np.testing.assert_array_equal(BaselineAgent(NoValidateBaseline()).act_batch(_boards(3)), [2, 2, 2])


def test_baseline_agent_skips_the_legality_check_and_still_checks_shapes():
    model = _tiny_baseline()
    board = _boards(1)[0].copy()
    board[board == 0] = HEAD_RIGHT  # every empty cell a head: illegal, but the agent must still answer
    with pytest.raises(ValueError):
        model.select_action(torch.as_tensor(board[None], dtype=torch.long))  # the model's own check rejects it
    assert BaselineAgent(model).act_batch(board[None]).shape == (1,)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        BaselineAgent(model).act_batch(board)


# ----------------------------------------------------------------------------------------------------------
# EqMAgent


@pytest.mark.parametrize("votes", [0, -1, 1.5, True, "2"])
def test_eqm_agent_rejects_votes_that_are_not_a_positive_int(votes):
    with pytest.raises(ValueError, match="votes must be a positive integer"):
        EqMAgent(RecordingModel(), votes=votes, init_scale=1.0)


def test_eqm_agent_refuses_votes_from_the_origin_even_two():
    with pytest.raises(ValueError, match="identical samples"):
        EqMAgent(RecordingModel(), votes=2)


def test_eqm_agent_passes_its_sampler_settings_on():
    model = RecordingModel()
    EqMAgent(model, num_steps=3, adaptive_threshold=0.25, init_scale=0.5).act_batch(_boards(4))
    call = model.calls[-1]
    assert (call["num_steps"], call["adaptive_threshold"], call["init_scale"]) == (3, 0.25, 0.5)
    assert call["validate"] is False and call["action"] is None
    EqMAgent(model).act_batch(_boards(4))  # unset: the model's own defaults (None), origin start
    call = model.calls[-1]
    assert (call["num_steps"], call["adaptive_threshold"], call["init_scale"]) == (None, None, 0.0)


def test_eqm_agent_noise_is_seeded_per_agent():
    boards = _boards(64)
    first = EqMAgent(RecordingModel(), seed=3, init_scale=1.0).act_batch(boards)
    torch.manual_seed(12345)  # the global generator must not matter
    again = EqMAgent(RecordingModel(), seed=3, init_scale=1.0).act_batch(boards)
    np.testing.assert_array_equal(first, again)
    other = EqMAgent(RecordingModel(), seed=4, init_scale=1.0).act_batch(boards)
    assert not np.array_equal(first, other)
    agent = EqMAgent(RecordingModel(), seed=3, init_scale=1.0)  # one stream: two calls draw different noise
    assert not np.array_equal(agent.act_batch(boards), agent.act_batch(boards))


def test_eqm_agent_vote_averages_each_boards_action_blocks():
    # Two boards, three draws each. Board 0: draws favour 1, 1, 3 but the average favours 3 (a large 3);
    # board 1: one draw per action 0, 2, 2 -> average favours 2. A majority vote or a mean over the wrong
    # axis gives other answers.
    logits = torch.tensor([
        [0.0, 1.0, 0.0, 0.9], [0.0, 1.0, 0.0, 0.9], [0.0, 0.0, 0.0, 5.0],
        [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0],
    ])
    model = RecordingModel(logits=logits)
    actions = EqMAgent(model, votes=3, init_scale=1.0).act_batch(_boards(2))
    np.testing.assert_array_equal(actions, [3, 2])
    obs = model.calls[-1]["obs"]
    assert obs.shape[0] == 6  # each board three times, draws of one board side by side
    assert torch.equal(obs[0], obs[2]) and torch.equal(obs[3], obs[5])


def test_eqm_agent_with_two_votes_repeats_each_board_twice():
    logits = torch.tensor([[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    model = RecordingModel(logits=logits)
    np.testing.assert_array_equal(EqMAgent(model, votes=2, init_scale=1.0).act_batch(_boards(2)), [1, 0])
    assert model.calls[-1]["obs"].shape[0] == 4


def test_eqm_agent_with_one_vote_plays_the_samples_action():
    logits = torch.tensor([[0.0, 0.0, 2.0, 1.0], [3.0, 0.0, 0.0, 0.0]])
    model = RecordingModel(logits=logits)
    np.testing.assert_array_equal(EqMAgent(model).act_batch(_boards(2)), [2, 0])
    assert model.calls[-1]["obs"].shape[0] == 2  # no repetition without votes


# ----------------------------------------------------------------------------------------------------------
# sample_model, model_device: where numpy boards cross into torch


def test_sample_model_sends_long_boards_and_actions_to_the_models_device():
    model = RecordingModel(device="meta")  # a device other than the CPU, without an accelerator
    sample_model(model, _boards(3).astype(np.int8), action=np.array([0, 1, 2], dtype=np.int8))
    call = model.calls[-1]
    assert call["obs"].device.type == "meta" and call["obs"].dtype == torch.long
    assert call["action"].device.type == "meta" and call["action"].dtype == torch.long
    assert model_device(model).type == "meta"


def test_sample_model_passes_actions_and_generator_and_turns_the_legality_check_off():
    model = RecordingModel()
    generator = torch.Generator().manual_seed(0)
    sample_model(model, _boards(2), generator=generator, action=[3, 1], num_steps=2)
    call = model.calls[-1]
    assert call["generator"] is generator and call["num_steps"] == 2
    assert call["action"].tolist() == [3, 1]
    assert call["validate"] is False
    sample_model(model, _boards(2), validate=True)  # a caller that wants the check keeps it
    assert model.calls[-1]["validate"] is True
    plain = NoValidateModel()
    sample_model(plain, _boards(2), num_steps=1)
    assert plain.calls[-1] == {"num_steps": 1}  # no `validate` for a model that does not take it


def test_model_device_of_a_parameter_free_model_is_the_cpu():
    assert model_device(NoValidateModel()) == torch.device("cpu")
    assert model_device(RecordingModel()) == torch.device("cpu")
