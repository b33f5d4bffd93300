"""One dream transition (snake_world_eqm.simulator.core), function by function, on hand-made boards and a scripted
stand-in model: which boards end a game and why, the rewards and events a step reports, where new food lands
(drawn from the model's food belief, copied from the real game, or left as the model put it), and which draw the
votes keep."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from snake_world_eqm.game import (
    BODY_UP,
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_LEFT,
    HEAD_RIGHT,
    NUM_CELL_CLASSES,
    SnakeState,
    encode_observation,
)
from snake_world_eqm.simulator.core import (
    check_model_size,
    copy_food,
    draw_food_from_decoder,
    dream_step,
    illegal_reasons,
    voted_sample,
)

HEIGHT, WIDTH = 4, 5  # not square: a mix-up of height and width shows


def board(body, food):
    return encode_observation(SnakeState(HEIGHT, WIDTH, tuple(body), food))


def serpentine():
    """Every cell of the board in one snake path, row by row, back and forth (head first)."""
    cells = [(row, col if row % 2 == 0 else WIDTH - 1 - col) for row in range(HEIGHT) for col in range(WIDTH)]
    return cells[::-1]


START = ((1, 2), (1, 1), (1, 0))  # a three-cell snake, head at (1, 2) moving right
FOOD_AT = (1, 3)


def start_board():
    return board(START, FOOD_AT)


def ate_board(new_food=(3, 4)):
    """The snake after eating at (1, 3): four cells, new food elsewhere."""
    return board(((1, 3), *START), new_food)


def moved_board():
    """The snake after moving down without eating."""
    return board(((2, 2), (1, 2), (1, 1)), FOOD_AT)


def full_board():
    return encode_observation(SnakeState(HEIGHT, WIDTH, tuple(serpentine()), None))


def food_cells(one_board):
    return [tuple(int(v) for v in cell) for cell in np.argwhere(np.asarray(one_board) == FOOD)]


# --- illegal_reasons ---------------------------------------------------------------------------------------------


def test_legal_terminal_and_full_boards_have_no_reason():
    boards = np.stack([start_board(), np.zeros((HEIGHT, WIDTH), np.int8), full_board(),
                       board(((0, 0),), (3, 4))])  # a lone head (HEAD_ALONE) with its food
    reasons = illegal_reasons(boards)
    assert reasons.dtype == object and list(reasons) == ["", "", "", ""]


def test_each_illegal_board_is_named_by_its_first_problem():
    two_heads = start_board()
    two_heads[3, 0] = HEAD_LEFT
    lone_second_head = start_board()
    lone_second_head[3, 0] = HEAD_ALONE
    no_food = start_board()
    no_food[no_food == FOOD] = EMPTY
    two_foods = start_board()
    two_foods[3, 4] = FOOD
    broken = start_board()
    broken[1, 1] = EMPTY  # the middle segment is gone
    headless = start_board()
    headless[1, 2] = BODY_UP
    heads_and_foods = two_heads.copy()
    heads_and_foods[3, 4] = FOOD
    heads_no_food = two_heads.copy()
    heads_no_food[heads_no_food == FOOD] = EMPTY
    broken_no_food = broken.copy()
    broken_no_food[broken_no_food == FOOD] = EMPTY
    broken_two_foods = broken.copy()
    broken_two_foods[3, 4] = FOOD
    boards = [two_heads, lone_second_head, no_food, two_foods, broken, headless, heads_and_foods, heads_no_food,
              broken_no_food, broken_two_foods]
    expected = ["illegal:heads", "illegal:heads", "illegal:no_food", "illegal:foods", "illegal:body", "illegal:heads",
                "illegal:heads", "illegal:heads", "illegal:no_food", "illegal:foods"]
    assert list(illegal_reasons(np.stack(boards))) == expected
    assert list(illegal_reasons(np.stack(boards).astype(np.int64))) == expected  # the model's dtype too


def test_a_full_board_without_food_is_only_illegal_for_its_body():
    """No food is the rule on a full board: a broken full snake is a body problem, not a missing food."""
    broken = full_board()
    broken[2, 2] = BODY_UP if broken[2, 2] != BODY_UP else BODY_UP + 1
    lone = np.full((HEIGHT, WIDTH), BODY_UP, np.int8)
    lone[0, 0] = HEAD_ALONE  # one head, every cell a snake cell, no chain
    assert list(illegal_reasons(np.stack([broken, lone]))) == ["illegal:body", "illegal:body"]
    almost = full_board()
    almost[0, 0] = EMPTY  # the tail cell freed: no longer full, and no food
    assert illegal_reasons(almost[None])[0] == "illegal:no_food"


# --- draw_food_from_decoder --------------------------------------------------------------------------------------


def point_mass(batch, cell, low=-50.0, high=0.0):
    weights = torch.full((batch, HEIGHT, WIDTH), low)
    weights[:, cell[0], cell[1]] = high
    return weights


def test_food_lands_where_the_food_belief_points_and_only_on_listed_rows():
    boards = np.stack([ate_board(), ate_board(), ate_board()])
    before = boards.copy()
    drawn = draw_food_from_decoder(point_mass(3, (0, 4)), boards, np.array([0, 2]), torch.Generator().manual_seed(0))
    assert np.array_equal(boards, before)  # a copy comes back
    assert food_cells(drawn[0]) == [(0, 4)] and food_cells(drawn[2]) == [(0, 4)]
    assert np.array_equal(drawn[1], before[1])
    for row in (0, 2):  # the snake is untouched
        assert np.array_equal(np.where(drawn[row] == FOOD, EMPTY, drawn[row]), np.where(before[row] == FOOD, EMPTY,
                                                                                        before[row]))
    single = draw_food_from_decoder(point_mass(3, (2, 0)), boards, np.array([1]))
    assert food_cells(single[1]) == [(2, 0)] and np.array_equal(single[[0, 2]], before[[0, 2]])
    unchanged = draw_food_from_decoder(point_mass(3, (2, 0)), boards, np.array([], dtype=np.int64))
    assert np.array_equal(unchanged, before) and unchanged is not boards


def test_the_decoders_per_cell_logits_are_read_as_food_probabilities():
    """(B, H, W, 12) logits: the cell with the highest p(FOOD), not the highest raw FOOD logit."""
    logits = torch.full((2, HEIGHT, WIDTH, NUM_CELL_CLASSES), 0.0)
    logits[..., FOOD] = -40.0
    logits[:, 0, 0, FOOD] = 30.0
    logits[:, 0, 0, EMPTY] = 80.0  # a higher FOOD logit, but EMPTY is far likelier there
    logits[:, 3, 0, FOOD] = 20.0  # p(FOOD) ~ 1
    drawn = draw_food_from_decoder(logits, np.stack([ate_board(), ate_board()]), np.array([0, 1]),
                                   torch.Generator().manual_seed(1))
    assert food_cells(drawn[0]) == [(3, 0)] and food_cells(drawn[1]) == [(3, 0)]


def test_far_out_log_weights_still_pick_their_most_likely_cell():
    """The weights are exponentiated relative to each row's largest: log-weights of -1000 do not underflow into
    the uniform fallback, and one row's scale does not swamp another's."""
    weights = torch.stack([point_mass(1, (0, 4), -1000.0, -950.0)[0], point_mass(1, (2, 1), 0.0, 60.0)[0]])
    drawn = draw_food_from_decoder(weights, np.stack([ate_board(), ate_board()]), np.array([0, 1]),
                                   torch.Generator().manual_seed(2))
    assert food_cells(drawn[0]) == [(0, 4)] and food_cells(drawn[1]) == [(2, 1)]


def test_food_may_stay_on_its_cell_but_never_lands_on_the_snake():
    boards = ate_board()[None]
    kept = draw_food_from_decoder(point_mass(1, (3, 4)), boards, np.array([0]), torch.Generator().manual_seed(0))
    assert food_cells(kept[0]) == [(3, 4)]
    many = np.repeat(ate_board()[None], 200, axis=0)
    on_snake = draw_food_from_decoder(point_mass(200, (1, 2), -200.0, 0.0), many, np.arange(200),
                                      torch.Generator().manual_seed(0))
    snake = ate_board() >= HEAD_ALONE
    landed = {cell for row in on_snake for cell in food_cells(row)}
    assert all(len(food_cells(row)) == 1 for row in on_snake)
    assert not any(snake[cell] for cell in landed)
    # the belief sits on the snake only (e^-200 underflows on every free cell): the draw falls back to uniform
    # over the free cells
    assert len(landed) == (~snake).sum()
    # row by row: a neighbour with a usable belief keeps it, and does not stop the fallback
    mixed = torch.stack([point_mass(1, (1, 2), -200.0, 0.0)[0], point_mass(1, (0, 4))[0]])
    drawn = draw_food_from_decoder(mixed, many[:2], np.array([0, 1]), torch.Generator().manual_seed(0))
    assert len(food_cells(drawn[0])) == 1 and not snake[food_cells(drawn[0])[0]]
    assert food_cells(drawn[1]) == [(0, 4)]


def test_two_foods_become_one():
    two = ate_board()
    two[0, 0] = FOOD
    drawn = draw_food_from_decoder(point_mass(1, (2, 3)), two[None], np.array([0]), torch.Generator().manual_seed(0))
    assert food_cells(drawn[0]) == [(2, 3)]


def test_a_full_board_keeps_no_food_while_its_neighbours_get_theirs():
    boards = np.stack([full_board(), ate_board(), full_board()])
    drawn = draw_food_from_decoder(point_mass(3, (0, 4)), boards, np.array([0, 1, 2]),
                                   torch.Generator().manual_seed(0))
    assert np.array_equal(drawn[0], full_board()) and np.array_equal(drawn[2], full_board())
    assert food_cells(drawn[1]) == [(0, 4)]


def test_temperature_flattens_the_food_belief():
    """Two likely cells with log-weights 0 and -2: the second is drawn with p = 1 / (1 + e^(2/T)); infinity draws
    uniformly over every free cell, whatever the belief."""
    rows = 4000
    weights = torch.full((rows, HEIGHT, WIDTH), -60.0)
    weights[:, 0, 4] = 0.0
    weights[:, 3, 0] = -2.0
    boards = np.repeat(ate_board()[None], rows, axis=0)

    def share_of_second(temperature):
        drawn = draw_food_from_decoder(weights, boards, np.arange(rows), torch.Generator().manual_seed(3),
                                       temperature)
        return (drawn[:, 3, 0] == FOOD).mean()

    for temperature in (1.0, 2.0, 0.5):
        expected = 1 / (1 + np.exp(2 / temperature))
        assert abs(share_of_second(temperature) - expected) < 0.03, temperature
    default = draw_food_from_decoder(weights, boards, np.arange(rows), torch.Generator().manual_seed(3))
    assert abs((default[:, 3, 0] == FOOD).mean() - 1 / (1 + np.exp(2))) < 0.03  # the model's own belief
    uniform = draw_food_from_decoder(weights, boards, np.arange(rows), torch.Generator().manual_seed(3), float("inf"))
    free = int((ate_board() < HEAD_ALONE).sum())
    counts = np.array([(uniform == FOOD)[:, r, c].sum() for r, c in np.argwhere(ate_board() < HEAD_ALONE)])
    assert counts.sum() == rows and len(counts) == free and counts.min() > rows / free / 2


def test_the_generator_makes_the_draw_repeatable():
    boards = np.repeat(ate_board()[None], 50, axis=0)
    weights = torch.zeros(50, HEIGHT, WIDTH)
    first = draw_food_from_decoder(weights, boards, np.arange(50), torch.Generator().manual_seed(7))
    again = draw_food_from_decoder(weights, boards, np.arange(50), torch.Generator().manual_seed(7))
    other = draw_food_from_decoder(weights, boards, np.arange(50), torch.Generator().manual_seed(8))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


# --- copy_food ---------------------------------------------------------------------------------------------------


def test_copy_food_takes_the_sources_food_where_it_is_free():
    boards = np.stack([ate_board(), ate_board(), ate_board()])
    before = boards.copy()
    sources = np.stack([ate_board((0, 0)), ate_board((2, 4)), ate_board((0, 1))])
    copied = copy_food(boards, [1, 2], sources)
    assert np.array_equal(boards, before)
    assert np.array_equal(copied[0], before[0])  # not listed
    assert food_cells(copied[1]) == [(2, 4)] and food_cells(copied[2]) == [(0, 1)]
    assert food_cells(copy_food(boards, np.int64(0), sources)[0]) == [(0, 0)]  # one row as a scalar


def test_copy_food_leaves_a_row_whose_source_food_is_unusable():
    target = ate_board()
    two = ate_board((0, 0))
    two[0, 1] = FOOD
    none = ate_board()
    none[none == FOOD] = EMPTY
    on_snake = ate_board()
    on_snake[on_snake == FOOD] = EMPTY
    on_snake[1, 1] = FOOD  # a snake cell on the prediction
    for source in (two, none, on_snake):
        assert np.array_equal(copy_food(target[None], [0], source[None])[0], target)
    # an unusable row does not stop the rows after it
    copied = copy_food(np.stack([target] * 4), [0, 1, 2, 3], np.stack([two, none, on_snake, ate_board((2, 0))]))
    assert np.array_equal(copied[:3], np.stack([target] * 3)) and food_cells(copied[3]) == [(2, 0)]
    same = copy_food(target[None], [0], ate_board()[None])[0]  # the source's food is the board's own food cell
    assert np.array_equal(same, target)
    doubled = target.copy()
    doubled[0, 0] = FOOD
    assert food_cells(copy_food(doubled[None], [0], ate_board((2, 0))[None])[0]) == [(2, 0)]  # others cleared


# --- check_model_size --------------------------------------------------------------------------------------------


def test_a_fixed_size_model_refuses_other_sizes():
    fixed = SimpleNamespace(config=SimpleNamespace(fixed_board_size=True, board_height=6, board_width=7))
    check_model_size(fixed, 6, 7)
    for height, width in ((7, 6), (6, 6), (7, 7)):
        with pytest.raises(ValueError, match=rf"^the model is fixed to 6x7 boards; got height={height}, "
                                             rf"width={width}$"):
            check_model_size(fixed, height, width)
    check_model_size(SimpleNamespace(config=SimpleNamespace(fixed_board_size=False, board_height=6, board_width=7)),
                     8, 8)
    check_model_size(SimpleNamespace(config=SimpleNamespace(board_height=6, board_width=7)), 8, 8)
    check_model_size(object(), 8, 8)


# --- a scripted stand-in model -----------------------------------------------------------------------------------


class Scripted(torch.nn.Module):
    """`sample` returns the boards of `script` (one per input row, in order) and records what it was asked;
    `latent_next` row i is [100 * call + i]. `food_head`: a `food_log_weights` that points at one cell."""

    def __init__(self, script, food_target=None, with_food_head=True, food_weights=None):
        super().__init__()
        self.food_weights = food_weights
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
        self.script = np.asarray(script)
        self.food_target = food_target
        self.calls, self.food_calls = [], []
        if with_food_head:
            self.food_log_weights = self._food_log_weights

    def sample(self, obs, action=None, generator=None, init_scale=1.0, num_steps=None, validate=True):
        self.calls.append(dict(obs=obs.clone(), action=action.clone(), generator=generator, init_scale=init_scale,
                               num_steps=num_steps, validate=validate))
        rows = len(obs)
        latent = (100.0 * len(self.calls) + torch.arange(rows, dtype=torch.float32))[:, None]
        return SimpleNamespace(next_board=torch.as_tensor(self.script[:rows].astype(np.int64)), latent_next=latent)

    def _food_log_weights(self, latent, boards):
        self.food_calls.append(dict(latent=latent.clone(), boards=boards.clone()))
        if self.food_weights is not None:
            return self.food_weights.expand(len(boards), HEIGHT, WIDTH)
        return point_mass(len(boards), self.food_target)

    def from_latent(self, latent, boards):
        self.food_calls.append(dict(latent=latent.clone(), boards=boards.clone(), decoder=True))
        logits = torch.zeros(len(boards), HEIGHT, WIDTH, NUM_CELL_CLASSES)
        logits[..., FOOD] = -50.0
        logits[:, self.food_target[0], self.food_target[1], FOOD] = 50.0
        return logits


# --- voted_sample ------------------------------------------------------------------------------------------------


def test_one_vote_passes_the_options_through_and_keeps_the_draw():
    model = Scripted([ate_board(), moved_board()])
    generator = torch.Generator()
    boards = np.stack([start_board(), start_board()])
    predicted, latent = voted_sample(model, boards, np.array([1, 2]), generator, init_scale=0.25, num_steps=7)
    assert predicted.dtype == np.int8 and np.array_equal(predicted, np.stack([ate_board(), moved_board()]))
    assert latent[:, 0].tolist() == [100.0, 101.0]
    call = model.calls[0]
    assert call["action"].tolist() == [1, 2] and call["generator"] is generator and call["init_scale"] == 0.25
    assert call["num_steps"] == 7 and call["validate"] is False
    assert np.array_equal(call["obs"].numpy(), boards)


def test_votes_keep_the_first_draw_of_the_most_common_snake():
    """Board 0's draws: moved, ate, ate (food elsewhere) -> the snake that ate, as its first draw put it.
    Board 1's draws: moved, illegal, moved (other food) -> the first moved draw."""
    other_food = moved_board()
    other_food[other_food == FOOD] = EMPTY
    other_food[3, 4] = FOOD
    illegal = moved_board()
    illegal[3, 0] = HEAD_RIGHT
    script = [moved_board(), ate_board((3, 4)), ate_board((0, 0)), moved_board(), illegal, other_food]
    model = Scripted(script)
    predicted, latent = voted_sample(model, np.stack([start_board(), start_board()]), np.array([1, 2]), votes=3)
    assert np.array_equal(predicted[0], ate_board((3, 4))) and np.array_equal(predicted[1], moved_board())
    assert latent[:, 0].tolist() == [101.0, 103.0]  # the kept draws' latents
    call = model.calls[0]
    assert call["action"].tolist() == [1, 1, 1, 2, 2, 2] and len(call["obs"]) == 6
    assert np.array_equal(call["obs"].numpy()[2], start_board())


def test_votes_compare_the_snakes_not_the_food():
    """Five draws: moved (food A), ate (food B), ate (food C), ate (food D), moved (food A): the snake that ate wins,
    though its draws agree on no food cell and the two moved draws agree on theirs."""
    moved_a = moved_board()
    moved_a[moved_a == FOOD] = EMPTY
    moved_a[0, 0] = FOOD
    script = [moved_a, ate_board((3, 4)), ate_board((0, 4)), ate_board((2, 0)), moved_a]
    predicted, latent = voted_sample(Scripted(script), start_board()[None], np.array([1]), votes=5)
    assert np.array_equal(predicted[0], ate_board((3, 4))) and latent[:, 0].tolist() == [101.0]


def test_two_votes_and_the_default_options():
    """Two draws per board, and `init_scale` 1 (a draw from EqM's noise) by default."""
    model = Scripted([moved_board(), moved_board(), ate_board(), ate_board()])
    predicted, latent = voted_sample(model, np.stack([start_board()] * 2), np.array([2, 1]), votes=2)
    assert predicted.shape == (2, HEIGHT, WIDTH) and np.array_equal(predicted, np.stack([moved_board(), ate_board()]))
    assert model.calls[0]["action"].tolist() == [2, 2, 1, 1] and latent.shape == (2, 1)
    assert model.calls[0]["init_scale"] == 1.0 and model.calls[0]["num_steps"] is None
    dream_step(model, start_board()[None], [2])
    assert model.calls[1]["init_scale"] == 1.0 and len(model.calls[1]["obs"]) == 1  # one vote by default


def test_fewer_than_one_vote_is_refused():
    model = Scripted([moved_board()])
    with pytest.raises(ValueError, match=r"^votes must be >= 1, got 0$"):
        voted_sample(model, start_board()[None], np.array([2]), votes=0)
    assert model.calls == []


# --- dream_step --------------------------------------------------------------------------------------------------


def test_rewards_events_and_end_reasons_of_every_kind_of_step():
    """A step that goes on, eats, dies, wins, or predicts an illegal board (also one that grew)."""
    almost_full = serpentine()[1:]  # one cell short of the full board, food on the last cell
    before_win = board(almost_full, serpentine()[0])
    illegal = moved_board()
    illegal[3, 0] = HEAD_RIGHT
    illegal_grown = ate_board()
    illegal_grown[3, 3] = FOOD
    script = [moved_board(), ate_board(), np.zeros((HEIGHT, WIDTH), np.int8), full_board(), illegal, illegal_grown]
    boards = np.stack([start_board()] * 3 + [before_win] + [start_board()] * 2)
    step = dream_step(Scripted(script), boards, [2, 1, 0, 1, 2, 1], food="model")
    assert np.array_equal(step.boards, np.stack(script).astype(np.int8))
    assert step.event.tolist() == ["none", "eat", "death", "win", "illegal", "illegal"]
    assert step.reason.tolist() == ["", "", "death", "win", "illegal:heads", "illegal:foods"]
    assert step.reward.dtype == np.float32 and step.reward.tolist() == [0.0, 1.0, -1.0, 1.0, 0.0, 0.0]
    assert step.terminated.tolist() == [False, False, True, True, True, True]
    assert step.length.tolist() == [3, 4, 0, HEIGHT * WIDTH, 4, 4]


def test_a_lone_head_moves_eats_and_lives():
    """A one-cell snake (HEAD_ALONE) that moves is the same length (no reward); one that eats is two cells long."""
    lone = board(((1, 2),), FOOD_AT)
    moved = board(((2, 2),), FOOD_AT)
    grown = board(((1, 3), (1, 2)), (3, 4))
    step = dream_step(Scripted([moved, grown]), np.stack([lone, lone]), [2, 1], food="model")
    assert step.event.tolist() == ["none", "eat"] and step.reward.tolist() == [0.0, 1.0]
    assert step.terminated.tolist() == [False, False] and step.length.tolist() == [1, 2]


def test_the_dreams_food_follows_the_models_belief_by_default():
    """food_temperature 1 by default: two likely cells with log-weights 0 and -2 keep their odds (1 : e^-2)."""
    rows = 4000
    weights = torch.full((1, HEIGHT, WIDTH), -60.0)
    weights[:, 0, 4], weights[:, 3, 0] = 0.0, -2.0
    model = Scripted(np.repeat(ate_board()[None], rows, axis=0), food_weights=weights)
    step = dream_step(model, np.repeat(start_board()[None], rows, axis=0), [1] * rows,
                      torch.Generator().manual_seed(3), food="decoder")
    assert abs((step.boards[:, 3, 0] == FOOD).mean() - 1 / (1 + np.exp(2))) < 0.03


def test_the_held_actions_and_sampling_options_reach_the_model():
    model = Scripted([moved_board(), moved_board()])
    generator = torch.Generator()
    dream_step(model, np.stack([start_board()] * 2), [[2], [3]], generator, init_scale=0.5, num_steps=4, food="model")
    call = model.calls[0]
    assert call["action"].tolist() == [2, 3] and call["action"].dtype == torch.long
    assert call["generator"] is generator and call["init_scale"] == 0.5 and call["num_steps"] == 4
    assert model.food_calls == []  # food="model": the model's own food


def test_decoder_food_is_drawn_only_where_the_snake_grew():
    model = Scripted([moved_board(), ate_board((3, 4)), ate_board((3, 4))], food_target=(0, 4))
    boards = np.stack([start_board()] * 3)
    step = dream_step(model, boards, [2, 1, 1], torch.Generator().manual_seed(0), food="decoder")
    assert food_cells(step.boards[0]) == [FOOD_AT]  # did not grow: the model's food stays
    assert food_cells(step.boards[1]) == [(0, 4)] and food_cells(step.boards[2]) == [(0, 4)]
    assert step.event.tolist() == ["none", "eat", "eat"] and step.reason.tolist() == ["", "", ""]
    (call,) = model.food_calls
    assert call["latent"][:, 0].tolist() == [100.0, 101.0, 102.0]  # every row's latent, the draws it grew on
    assert np.array_equal(call["boards"].numpy(), boards) and call["boards"].dtype == torch.long


def test_decoder_food_without_a_food_head_reads_the_decoder_and_nothing_grew_asks_nothing():
    model = Scripted([ate_board((3, 4))], food_target=(2, 0), with_food_head=False)
    step = dream_step(model, start_board()[None], [1], torch.Generator().manual_seed(0), food="decoder")
    assert food_cells(step.boards[0]) == [(2, 0)] and model.food_calls[0].get("decoder")
    still = Scripted([moved_board()], food_target=(2, 0))
    dream_step(still, start_board()[None], [2], food="decoder")
    assert still.food_calls == []


def test_the_food_belief_is_asked_on_the_models_device():
    """A model on an accelerator gets the boards it is asked about on its own device (the meta device stands in)."""
    model = Scripted([ate_board((3, 4))], food_target=(0, 4)).to("meta")
    step = dream_step(model, start_board()[None], [1], torch.Generator().manual_seed(0), food="decoder")
    assert model.calls[0]["obs"].device.type == "meta" and model.food_calls[0]["boards"].device.type == "meta"
    assert food_cells(step.boards[0]) == [(0, 4)]


def test_decoder_food_uses_the_kept_vote_and_the_temperature():
    script = [moved_board(), ate_board((3, 4)), ate_board((0, 0))]
    model = Scripted(script, food_target=(0, 4))
    step = dream_step(model, start_board()[None], [1], torch.Generator().manual_seed(0), food="decoder", votes=3)
    assert food_cells(step.boards[0]) == [(0, 4)] and model.food_calls[0]["latent"][:, 0].tolist() == [101.0]
    rows = 300
    flat = Scripted([ate_board((3, 4))] * rows, food_target=(0, 4))
    spread = dream_step(flat, np.stack([start_board()] * rows), [1] * rows, torch.Generator().manual_seed(0),
                        food="decoder", food_temperature=float("inf"))
    assert len({cell for row in spread.boards for cell in food_cells(row)}) > 5  # uniform, not the point mass
    first = dream_step(flat, np.stack([start_board()] * rows), [1] * rows, torch.Generator().manual_seed(5),
                       food="decoder", food_temperature=float("inf"))
    again = dream_step(flat, np.stack([start_board()] * rows), [1] * rows, torch.Generator().manual_seed(5),
                       food="decoder", food_temperature=float("inf"))
    assert np.array_equal(first.boards, again.boards)


def test_food_from_is_copied_where_the_snake_grew_only():
    script = [moved_board(), ate_board((3, 4)), ate_board((3, 4))]
    taken = ate_board()
    taken[taken == FOOD] = EMPTY
    taken[1, 2] = FOOD  # a cell the predicted snake holds
    given = np.stack([ate_board((0, 0)), ate_board((0, 0)), taken])
    step = dream_step(Scripted(script, food_target=(2, 0)), np.stack([start_board()] * 3), [2, 1, 1],
                      torch.Generator().manual_seed(0), food="decoder", food_from=given)
    assert food_cells(step.boards[0]) == [FOOD_AT]  # did not grow
    assert food_cells(step.boards[1]) == [(0, 0)]  # copied over the decoder's draw
    assert food_cells(step.boards[2]) == [(2, 0)]  # the source's cell is taken: the drawn food stays
    model_food = dream_step(Scripted(script), np.stack([start_board()] * 3), [2, 1, 1], food="model",
                            food_from=given)
    assert [food_cells(b) for b in model_food.boards] == [[FOOD_AT], [(0, 0)], [(3, 4)]]


def test_bad_food_options_are_refused():
    model = Scripted([moved_board()])
    with pytest.raises(ValueError, match=r"^food must be one of \('model', 'decoder'\), got 'uniform'$"):
        dream_step(model, start_board()[None], [2], food="uniform")
    with pytest.raises(ValueError, match=r"^food_from must have the boards' shape \(1, 4, 5\), got \(4, 5\)$"):
        dream_step(model, start_board()[None], [2], food_from=start_board())


def test_a_tie_between_snakes_keeps_the_board_drawn_first():
    """Two draws that disagree (one grew, one did not): the first one drawn is kept, whichever it is."""
    for script, expected in (([ate_board(), moved_board()], ate_board()), ([moved_board(), ate_board()], moved_board())):
        predicted, _ = voted_sample(Scripted(script), start_board()[None], np.array([1]), votes=2)
        assert np.array_equal(predicted[0], expected)
