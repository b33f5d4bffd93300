"""Play inside the model beside the real game (issue 36, item 5): `DreamBesideReal` moves a real game and the
model's dream with one action stream. A stand-in model that predicts exactly the real next board keeps the
divergence at 0; one that corrupts a prediction shows the divergence, the step it began and the illegal end;
resync puts the real board back into the dream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.agents.simple import ExpertAgent
from snake_world_eqm.game import FOOD, SnakeState, batched_step, encode_observation, mask_food, new_game
from snake_world_eqm.simulator import DreamBesideReal, copy_food, dream_step
from tests.dream_helpers import CorruptingModel, ExactModel, food_cell
from tests.simulator.conftest import TINY


def _play_expert(twin: DreamBesideReal, steps: int, world: str = "real") -> list[dict]:
    expert, seen = ExpertAgent(), []
    while not twin.done and twin.steps < steps:
        before = twin.real.copy()
        action = int(expert.act_batch(twin.board(twin.acting_world(world))[None])[0])
        divergence = twin.step(action)
        seen.append({"before": before, "action": action, "divergence": divergence, "real": twin.real.copy(),
                     "event": twin.real_event})
    return seen


@pytest.mark.parametrize("food", ["decoder", "real"])
def test_a_model_that_predicts_the_real_board_never_diverges(food):
    twin = DreamBesideReal(ExactModel(6, 6, seed=1), 6, 6, seed=1, food=food)
    seen = _play_expert(twin, 60)
    assert len(seen) == 60 and twin.real_apples >= 5 and twin.dream_apples == twin.real_apples
    for record in seen:
        d = record["divergence"]
        assert d.equal and d.cells == 0 and d.snake_cells == 0 and not d.mask.any()
        # The real board is the rules' successor (food placement after an apple is random).
        truth = batched_step(record["before"][None], np.array([record["action"]]), np.random.default_rng(0))[0][0]
        assert np.array_equal(mask_food(record["real"][None]), mask_food(truth[None]))
    assert np.array_equal(twin.dream, twin.real) and food_cell(twin.dream) == food_cell(twin.real)
    assert (twin.first_diverged, twin.first_snake_diverged, twin.dream_end, twin.real_end) == (None, None, "", "")
    assert twin.divergence_line() == "dream = real"


def test_a_corrupted_prediction_is_counted_dated_and_ends_the_dream_as_illegal():
    twin = DreamBesideReal(CorruptingModel(6, 6, seed=1, corrupt=(4,)), 6, 6, seed=1)
    seen = _play_expert(twin, 10)
    assert [r["divergence"].equal for r in seen[:3]] == [True] * 3
    fourth = seen[3]["divergence"]
    # One empty cell became a second head: exactly one cell differs, food masked or not.
    assert (fourth.cells, fourth.snake_cells, fourth.first_step, fourth.first_snake_step) == (1, 1, 4, 4)
    assert twin.dream_end == "illegal:heads" and twin.dream_done and not twin.real_done
    assert twin.dream_event == "illegal" and twin.dream_apples <= twin.real_apples
    # The dream stays as it ended (the illegal board) while the real game goes on with the moves.
    frozen = seen[3]["real"]
    assert twin.steps == 10 and not np.array_equal(twin.real, frozen)
    assert twin.divergence().first_step == 4 and twin.divergence().cells > 1
    line = twin.divergence_line()
    assert "first differed at step 4" in line and "dream ended: illegal:heads" in line
    data = twin.as_dict()
    assert data["dream"]["legal"] is False and data["dream"]["end"] == "illegal:heads"
    assert data["divergence"]["first_step"] == 4 and data["divergence"]["cells"] == twin.divergence().cells

    twin.resync()
    assert np.array_equal(twin.dream, twin.real) and not twin.dream_done and twin.divergence().cells == 0
    assert (twin.first_diverged, twin.resyncs, twin.synced_at) == (None, 1, 10)
    after = _play_expert(twin, 16)  # the corruption was a one-off: the snake follows the game again
    # (the stand-in's food draws fell behind the real game's while the dream stood still: only food may differ)
    assert all(record["divergence"].snake_cells == 0 for record in after) and twin.steps == 16
    assert twin.first_snake_diverged is None
    assert "resynced 1x, last at step 10" in twin.divergence_line()


def test_the_agent_reads_the_board_it_is_told_to_and_falls_back_when_that_world_ended():
    twin = DreamBesideReal(CorruptingModel(6, 6, seed=1, corrupt=(2,)), 6, 6, seed=1)
    assert twin.acting_world("dream") == "dream" and twin.acting_world("real") == "real"
    _play_expert(twin, 2, world="dream")
    assert twin.dream_done and twin.acting_world("dream") == "real"  # the dream ended: the agent reads the real board
    with pytest.raises(ValueError, match="acts on one of real, dream"):
        twin.acting_world("both")


def test_a_death_ends_the_real_game_and_the_dream_predicts_it():
    twin = DreamBesideReal(ExactModel(6, 6, seed=2), 6, 6, seed=2)
    state = new_game(6, 6, rng=2)
    neck = [i for i, (dr, dc) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1)))
            if (state.head[0] + dr, state.head[1] + dc) == state.body[1]][0]
    divergence = twin.step(neck)
    assert twin.real_end == "reverse" and twin.dream_end == "death" and twin.done and divergence.equal
    with pytest.raises(ValueError, match="both games are over"):
        twin.step(0)
    with pytest.raises(ValueError, match="real game is over"):
        twin.resync()


def test_food_corrected_dream_copies_the_real_food_and_the_decoder_draws_its_own():
    """On the tiny random model nothing is right, so check the food rule on `dream_step` and `copy_food`
    directly: where the snake grew, the food comes from the given board when its cell is free."""
    board = encode_observation(new_game(6, 6, rng=4))
    other = board.copy()
    other[other == FOOD] = 0
    free = tuple(np.argwhere(other == 0)[-1])
    other[free] = FOOD
    boards = np.stack([board, board])
    copied = copy_food(boards, np.array([1]), np.stack([other, other]))
    assert np.array_equal(copied[0], board) and food_cell(copied[1]) == free and (copied[1] == FOOD).sum() == 1
    snake = tuple(np.argwhere(board >= 2)[0])
    taken = other.copy()
    taken[taken == FOOD] = 0
    taken[snake] = FOOD  # the source's food sits on the board's snake: nothing is copied
    assert np.array_equal(copy_food(boards, np.array([0]), np.stack([taken, taken]))[0], board)

    model = ExactModel(6, 6, seed=0)
    start = encode_observation(SnakeState(6, 6, ((2, 2), (2, 1), (2, 0)), (2, 3)))  # food right of the head
    given = start.copy()
    given[given == FOOD] = 0
    target = (5, 5)
    given[target] = FOOD
    result = dream_step(model, start[None], np.array([1]), food="decoder", food_from=given[None])
    assert result.event[0] == "eat" and food_cell(result.boards[0]) == target and (result.boards[0] == FOOD).sum() == 1
    # Without the given board the decoder draws it: the stand-in's decoder names the rules' own draw.
    drawn = dream_step(ExactModel(6, 6, seed=0), start[None], np.array([1]), food="decoder")
    assert drawn.event[0] == "eat" and food_cell(drawn.boards[0]) not in (None, (2, 3))


def test_tiny_random_model_and_bad_options():
    torch.manual_seed(0)
    model = SnakeWorldEqM(SnakeWorldEqMConfig(**TINY)).eval()
    twin = DreamBesideReal(model, 6, 6, seed=0)
    expert = ExpertAgent()
    while not twin.done and twin.steps < 20:
        twin.step(int(expert.act_batch(twin.board(twin.acting_world("real"))[None])[0]))
    # A random model's first prediction is an illegal board: the dream ends at once, with a reason.
    assert twin.dream_end.startswith("illegal:") and twin.first_diverged == 1
    with pytest.raises(ValueError, match="dream food must be one of decoder, real"):
        DreamBesideReal(model, 6, 6, food="uniform")
    with pytest.raises(ValueError, match="fixed to 6x6"):
        DreamBesideReal(model, 8, 8)
    fresh = DreamBesideReal(model, 6, 6)
    for bad in (4, -1, 1.0, True):
        with pytest.raises(ValueError, match="action must be an int"):
            fresh.step(bad)
    assert fresh.steps == 0
