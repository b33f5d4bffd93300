"""The model-predictive planner: it decides from the model alone, avoids predicted deaths and dead ends,
searches only where the plan is risky, and does not loop (one-cell starts included)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from snake_world_eqm.agents import EqMAgent, PlannerAgent, RandomAgent
from snake_world_eqm.agents.planner import (
    DIED,
    LOST,
    ModelPlanner,
    Plan,
    PlannerConfig,
    arrival_times,
    entered_cells,
    escape_search,
    expected_food_wait,
    tail_following_actions,
    vacate_times,
)
from snake_world_eqm.evaluation.closed_loop import initial_boards, play_games
from snake_world_eqm.evaluation.dead_ends import dead_end_boards, greedy_actions, survives
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import (
    DEATH_EVENTS,
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_LEFT,
    SnakeState,
    batched_step,
    batched_successors,
    encode_observation,
)
from snake_world_eqm.game.geometry import neck_directions, snake_lengths

DEATHS = [int(event) for event in DEATH_EVENTS]


def _random_boards(count: int, size: int = 6, seed: int = 0, warmup: int = 12) -> np.ndarray:
    """Boards from random play (restarting dead games), so snakes point in every direction."""
    rng = np.random.default_rng(seed)
    boards = initial_boards(count, size, size, seed)
    for _ in range(warmup):
        candidate, _, event, _ = batched_step(boards, rng.integers(0, 4, size=count), rng)
        alive = ~np.isin(event, DEATHS)
        boards[alive] = candidate[alive]
    return boards


class FastOracle(OracleWorldModel):
    """The simulator-backed model, with a vectorised legality test (the planner only feeds it boards with
    one head: lines stop at predicted deaths), so the tests stay fast."""

    @staticmethod
    def _legal(boards: np.ndarray) -> np.ndarray:
        return ((boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)).sum(axis=(1, 2)) == 1


class GreedyOracle(FastOracle):
    """A perfect what-if model whose own (free) action is food-greedy, so the plan must be overruled."""

    def sample(self, obs, action=None, **kwargs):
        if action is None:
            greedy = torch.as_tensor(greedy_actions(np.asarray(obs.cpu() if torch.is_tensor(obs) else obs)))
            out = super().sample(obs, action=greedy, **kwargs)
            return SimpleNamespace(**{**vars(out), "action": greedy})
        return super().sample(obs, action=action, **kwargs)


class PingPongOracle(FastOracle):
    """A perfect what-if model whose own action goes up on even rows and down on odd ones: a one-cell
    snake (reversal legal) swings between two cells forever and never eats."""

    def sample(self, obs, action=None, **kwargs):
        if action is None:
            boards = np.asarray(obs.cpu() if torch.is_tensor(obs) else obs)
            head_row = ((boards >= 2) & (boards <= 6)).any(axis=2).argmax(axis=1)
            swing = torch.as_tensor(np.where(head_row % 2 == 0, 2, 0))
            out = super().sample(obs, action=swing, **kwargs)
            return SimpleNamespace(**{**vars(out), "action": swing})
        return super().sample(obs, action=action, **kwargs)


def test_time_aware_search_on_hand_boards():
    coiled = encode_observation(SnakeState(5, 5, ((2, 2), (2, 3), (3, 3), (3, 2), (3, 1)), (0, 0)))[None]
    assert vacate_times(coiled)[0, 2, 2] == 5 and vacate_times(coiled)[0, 3, 1] == 1  # head 5, tail 1
    room, escapes, food = escape_search(coiled)
    assert escapes.tolist() == [True] and food.tolist() == [4] and room[0] == 24
    pocket = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2), (4, 3), (4, 4))
    trapped = encode_observation(SnakeState(5, 5, pocket, (3, 4)))[None]
    room, escapes, food = escape_search(trapped)
    assert escapes.tolist() == [False] and room.tolist() == [2] and food.tolist() == [-1]


def test_tail_following_never_eats_and_never_reverses():
    boards = _random_boards(60, seed=3)
    moves = tail_following_actions(boards)
    successors, _, events, _ = batched_successors(boards)
    chosen = events[np.arange(60), moves]
    assert not (chosen == 5).any()  # REVERSE
    has_other = ((events == 0) & (successors[np.arange(60)[:, None], np.arange(4)] != 0).any(axis=(2, 3))).any(1)
    assert not ((chosen == 1) & has_other).any()  # never the food while a plain move exists


def test_planner_never_calls_the_rules_engine(monkeypatch):
    import snake_world_eqm.game as game
    import snake_world_eqm.game.batched as batched
    import snake_world_eqm.game.expert as expert
    import snake_world_eqm.game.rules as rules
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
    from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM

    torch.manual_seed(0)
    model = SnakeWorldEqM(SnakeWorldEqMConfig.cpu_small(
        board_height=6, board_width=6, d_model=16, cnn_channels=16, cnn_layers=1, latent_dim=8, latent_hidden_dim=16,
        decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=1)).eval()
    boards = _random_boards(3, seed=7)
    planner = PlannerAgent(model, horizon=3, rollouts=1, gate="always")

    def forbidden(*args, **kwargs):
        raise AssertionError("the planner called the rules engine")

    for module in (game, batched, rules, expert):
        for name in ("step", "batched_step", "batched_successors", "expert_actions", "astar_action",
                     "heuristic_action"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, forbidden)
    actions = planner.act_batch(boards)
    assert actions.shape == (3,) and planner.stats.searches == 3
    assert planner.stats.boards_sampled >= 3 * 4  # it really imagined lines (at least each first move)


def test_one_sample_call_per_imagined_step_for_every_line():
    oracle = OracleWorldModel(6, 6)
    planner = ModelPlanner(oracle, horizon=4)
    lines = planner.imagine(_random_boards(8, seed=2), np.full(8, 4))
    assert oracle.sample_calls <= 4 and lines.steps.max() <= 4
    first_boards = int(lines.steps.sum())
    oracle.sample_calls = 0
    boards = np.repeat(_random_boards(5, seed=4), 4, axis=0)
    first = np.tile(np.arange(4), 5)
    lines = planner.imagine(boards, np.full(20, 3), first)
    assert oracle.sample_calls <= 3  # held first step, then the sampled actions
    # The move into the neck is death by the rules: filled in, never asked of the model.
    neck = first == neck_directions(boards)
    assert (lines.status[neck] == DIED).all() and (lines.steps[neck] == 1).all()
    assert planner.stats.boards_sampled == first_boards + lines.steps.sum() - neck.sum()  # one per board asked


def test_planner_avoids_predicted_deaths_when_a_safe_move_exists():
    boards = _random_boards(40, seed=1)
    chosen = PlannerAgent(GreedyOracle(6, 6), horizon=6).act_batch(boards)
    _, _, events, _ = batched_successors(boards)
    deadly = np.isin(events, DEATHS)
    has_safe = ~deadly.all(axis=1)
    assert has_safe.sum() > 30
    assert not deadly[np.arange(40), chosen][has_safe].any()


def test_the_gate_keeps_a_safe_plan_and_searches_only_risky_boards():
    boards = _random_boards(12, seed=6)
    trusting = PlannerAgent(OracleWorldModel(6, 6, seed=1), horizon=6)
    chosen = trusting.act_batch(boards)
    assert trusting.stats.searches < 12
    always = PlannerAgent(OracleWorldModel(6, 6, seed=1), horizon=6, gate="always")
    always.act_batch(boards)
    assert always.stats.searches == 12 and always.stats.boards_sampled > trusting.stats.boards_sampled
    _, _, events, _ = batched_successors(boards)
    deadly = np.isin(events, DEATHS)
    assert not deadly[np.arange(12), chosen][~deadly.all(axis=1)].any()


def test_one_cell_snakes_do_not_loop_when_the_policy_swings_forever():
    swinging = play_games(EqMAgent(PingPongOracle(6, 6)), 6, 6, num_games=4, seed=20, max_steps=150,
                          progress=False, start_length=1)
    # The policy alone never eats (the test can fail); from the origin the agent is deterministic, so the
    # repeated board ends each game as a loop.
    assert swinging["loops"] == 4 and max(swinging["apples_per_game"]) == 0
    planner = PlannerAgent(PingPongOracle(6, 6), horizon=8)
    planned = play_games(planner, 6, 6, num_games=4, seed=20, max_steps=150, progress=False, start_length=1)
    assert planned["stalls"] == 0 and planned["loops"] == 0 and planned["deaths"] == 0
    assert min(planned["apples_per_game"]) >= 3
    assert planner.stats.stall_searches > 0  # the stall detector is what changed the plan


class MisdrawingPingPong(PingPongOracle):
    """The swinging policy, whose own (free) predictions from an even head row also draw a stray snake cell
    in a far corner: to the planner such a move looks like an apple that never comes, as the shipped model's
    rare misdrawn boards did (once per lap of an 82-step cycle in the evaluation)."""

    def sample(self, obs, action=None, **kwargs):
        out = super().sample(obs, action=action, **kwargs)
        if action is None:
            before = np.asarray(obs.cpu() if torch.is_tensor(obs) else obs)
            head_row = ((before >= 2) & (before <= 6)).any(axis=2).argmax(axis=1)
            boards = out.next_board.cpu().numpy().copy() if torch.is_tensor(out.next_board) else np.array(out.next_board)
            corner = (boards[:, -1, -1] == 0) & (head_row % 2 == 0)
            boards[corner, -1, -1] = 11  # TAIL: one more snake cell than the rules give
            out = SimpleNamespace(**{**vars(out), "next_board": torch.as_tensor(boards)})
        return out


def test_the_stall_detector_counts_on_when_the_model_misdraws_the_next_board():
    planner = PlannerAgent(MisdrawingPingPong(6, 6), horizon=8)
    played = play_games(planner, 6, 6, num_games=4, seed=20, max_steps=150, progress=False, start_length=1)
    # Each game's memory is found again although no expected board was right, and only a real apple resets
    # it: the repeated boards are noticed and searched away from.
    assert planner.stats.stall_searches > 0
    assert played["stalls"] == 0 and min(played["apples_per_game"]) >= 1


def test_a_games_memory_is_the_nearest_expected_board_unless_it_grew():
    from snake_world_eqm.agents.planner import MEMORY_MATCH_CELLS, ModelPlanner, _masked_key, _Memory

    planner = ModelPlanner(OracleWorldModel(6, 6))
    board = initial_boards(1, 6, 6, seed=3)[0].astype(np.int8)
    remembered = _Memory(since_food=7, seen={b"x"}, length=int(snake_lengths(board[None])[0]))

    def misdrawn(cells: int) -> np.ndarray:  # the plan's expected board with `cells` stray snake cells
        expected = board.copy()
        free = np.argwhere(board == 0)[:cells]
        expected[free[:, 0], free[:, 1]] = 11
        return expected

    planner._memory = {_masked_key(board): remembered}
    assert planner._recall(board) is remembered
    planner._memory = {_masked_key(misdrawn(MEMORY_MATCH_CELLS)): remembered}
    assert planner._recall(board) is remembered
    planner._memory = {_masked_key(misdrawn(MEMORY_MATCH_CELLS + 1)): remembered}
    assert planner._recall(board) is not remembered and planner._recall(board).since_food == 0
    planner._memory = {_masked_key(board): remembered}
    remembered.length -= 1  # the real snake is longer than when remembered: it ate
    assert planner._recall(board).since_food == 0


def test_planner_with_a_perfect_model_outplays_random_from_both_starts():
    for start in (3, 1):
        planned = play_games(PlannerAgent(FastOracle(6, 6, seed=1)), 6, 6, num_games=4, seed=10,
                             max_steps=150, progress=False, start_length=start)
        random = play_games(RandomAgent(0), 6, 6, num_games=4, seed=10, max_steps=150, progress=False,
                            start_length=start)
        assert planned["deaths"] == 0 and planned["stalls"] == 0
        assert planned["mean_apples"] > random["mean_apples"] + 5


def test_dead_end_suite_the_planner_survives_40_steps():
    boards = dead_end_boards(100, seed=11)
    assert len(boards) == 100
    rng = np.random.default_rng(0)
    planner = PlannerAgent(GreedyOracle(8, 8, seed=2))
    survived = survives(boards, planner.act_batch, 40, rng)
    assert survived.mean() >= 0.98, f"survived {survived.mean():.2%} of the dead-end boards"


def test_planner_config_rejects_bad_knobs_in_one_line(capsys):
    for bad, match in (({"horizon": 0}, "horizon"), ({"rollouts": 0}, "rollouts"), ({"gate": "maybe"}, "gate"),
                       ({"gate_seeds": -1}, "gate_seeds"), ({"init_scale": -0.5}, "init_scale"),
                       ({"init_scale": float("nan")}, "init_scale"),
                       ({"search_init_scale": -1.0}, "search_init_scale"),
                       ({"stall_init_scale": float("inf")}, "stall_init_scale")):
        with pytest.raises(ValueError, match=match):
            PlannerConfig(**bad)
    from snake_world_eqm.evaluation.play import main

    with pytest.raises(SystemExit) as exit_:
        main(["--agent", "expert", "--planner-horizon", "0"])
    assert exit_.value.code == 2 and "--planner-horizon: expected an integer from 1 to 64, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--agent", "expert", "--planner-init-scale", "-1"])
    assert exit_.value.code == 2 and "--planner-init-scale: expected a finite number >= 0" in capsys.readouterr().err


def test_the_planner_passes_its_init_scale_to_every_sample():
    seen = []

    class Recording(OracleWorldModel):
        def sample(self, obs, action=None, **kwargs):
            seen.append(kwargs.get("init_scale"))
            return super().sample(obs, action=action, **kwargs)

    boards = initial_boards(3, 6, 6, seed=0)
    # search_init_scale None: the search draws like the plan
    PlannerAgent(Recording(6, 6), init_scale=0.5, search_init_scale=None, horizon=3, gate="always").act_batch(boards)
    assert seen and set(seen) == {0.5}


def test_the_search_draws_its_lines_with_its_own_init_scale():
    """The plan may follow the deterministic origin policy while the searched lines draw noise."""
    calls = []

    class Recording(OracleWorldModel):
        def sample(self, obs, action=None, **kwargs):
            calls.append((action is not None, kwargs.get("init_scale")))
            return super().sample(obs, action=action, **kwargs)

    boards = initial_boards(3, 6, 6, seed=0)
    PlannerAgent(Recording(6, 6), init_scale=0.0, search_init_scale=0.5, horizon=3, gate="always").act_batch(boards)
    plan_calls = calls[:3]  # the plan is imagined first: one free sample per step of its horizon
    assert plan_calls == [(False, 0.0)] * 3
    search_calls = calls[3:]
    assert search_calls and {scale for _, scale in search_calls} == {0.5}
    assert any(held for held, _ in search_calls)  # the first actions are held in the search


def test_searches_while_stalling_draw_their_lines_with_the_stall_init_scale():
    held_scales = []

    class Recording(PingPongOracle):
        def sample(self, obs, action=None, **kwargs):
            if action is not None:
                held_scales.append(kwargs.get("init_scale"))
            return super().sample(obs, action=action, **kwargs)

    planner = PlannerAgent(Recording(6, 6), horizon=8, init_scale=0.0, search_init_scale=0.25, stall_init_scale=0.75)
    played = play_games(planner, 6, 6, num_games=2, seed=20, max_steps=60, progress=False, start_length=1)
    # The swinging policy repeats boards, so the stall detector searches; only searches hold actions.
    assert planner.stats.stall_searches > 0 and played["loops"] == 0
    assert 0.75 in held_scales and set(held_scales) <= {0.25, 0.75}


def test_default_planner_is_the_documented_default():
    agent = PlannerAgent(OracleWorldModel(6, 6))
    assert agent.config == PlannerConfig()
    assert agent.config.gate == "risk" and 8 <= agent.config.horizon <= 48


class NeckLover(FastOracle):
    """Samples the move into the neck and wrongly predicts that nothing happens (the board unchanged), as the
    shipped model did for a two-cell snake; held moves are predicted right."""

    def sample(self, obs, action=None, **kwargs):
        if action is None:
            boards = np.asarray(obs.cpu() if torch.is_tensor(obs) else obs)
            neck = torch.as_tensor(np.maximum(neck_directions(boards), 0))
            out = super().sample(obs, action=neck, **kwargs)
            return SimpleNamespace(**{**vars(out), "action": neck, "next_board": torch.as_tensor(boards)})
        return super().sample(obs, action=action, **kwargs)


def test_a_sampled_move_into_the_neck_is_a_death_whatever_the_model_predicts():
    boards = _random_boards(10, seed=8)
    planner = ModelPlanner(NeckLover(6, 6), horizon=4)
    lines = planner.imagine(boards, np.full(10, 4))
    assert (lines.status == DIED).all() and (lines.steps == 1).all()
    chosen = PlannerAgent(NeckLover(6, 6), horizon=4).act_batch(boards)
    assert not (chosen == neck_directions(boards)).any()


def test_arrival_times_and_the_expected_wait_for_the_next_apple():
    # A four-cell snake along the top of a 4x4 board: its cells free up tail first, so the head can enter
    # (0, 1) after 3 moves, never before.
    board = encode_observation(SnakeState(4, 4, ((0, 0), (0, 1), (0, 2), (0, 3)), (3, 3)))[None]
    assert arrival_times(board)[0].tolist() == [[-1, 3, 4, 5], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]]
    assert expected_food_wait(np.where(board == FOOD, EMPTY, board)).tolist() == [42 / 12]


def test_entered_cells_reads_the_cell_a_move_enters_and_its_ways_on():
    pocket = encode_observation(SnakeState(5, 5, ((1, 0), (1, 1), (0, 1), (0, 2), (0, 3)), (0, 0)))[None]
    codes, exits = entered_cells(np.repeat(pocket, 4, axis=0), np.arange(4))
    assert codes[0] == FOOD and exits[0] == 0  # up: the food, in a corner walled by the body
    assert codes[2] == EMPTY and exits[2] == 2 and codes[3] == -1  # down: free, two ways on; left: off board


class BlindEater(FastOracle):
    """A perfect model except that it cannot draw an apple being eaten: it loses the head (the shipped
    model's blind spot when the tail is right behind the head)."""

    def sample(self, obs, action=None, **kwargs):
        out = super().sample(obs, action=action, **kwargs)
        boards = np.asarray(obs.cpu() if torch.is_tensor(obs) else obs)
        predicted = out.next_board.numpy().copy()
        ate = snake_lengths(predicted) > snake_lengths(boards)
        predicted[ate] = np.where((predicted[ate] >= HEAD_ALONE) & (predicted[ate] <= HEAD_LEFT), EMPTY,
                                  predicted[ate])
        return SimpleNamespace(**{**vars(out), "next_board": torch.as_tensor(predicted)})


def test_apples_the_model_cannot_draw_are_eaten_when_stalling_unless_the_food_is_a_pocket():
    planner = ModelPlanner(BlindEater(6, 6), unsure_penalty=1.0)
    board = encode_observation(SnakeState(6, 6, ((2, 2), (2, 1), (2, 0)), (2, 3)))[None]
    lines = planner.imagine(np.repeat(board, 2, axis=0), np.array([4, 4]), np.array([1, 0]))  # right eats, up not
    assert lines.status[0] == LOST and lines.entered[0] == FOOD
    trusted, doubted = (planner.line_values(lines.status, lines.steps, lines.end_boards(), lines.entered, lines.exits,
                                            np.array([trust, trust])) for trust in (True, False))
    assert trusted[0] > trusted[1] and doubted[0] < doubted[1] < trusted[0]
    # Food in a corner walled by the body: eating it is death two moves later, stalling or not.
    pocket = encode_observation(SnakeState(5, 5, ((1, 0), (1, 1), (0, 1), (0, 2), (0, 3)), (0, 0)))[None]
    planner = ModelPlanner(BlindEater(5, 5), unsure_penalty=1.0)
    lines = planner.imagine(np.repeat(pocket, 2, axis=0), np.array([4, 4]), np.array([0, 2]))
    values = planner.line_values(lines.status, lines.steps, lines.end_boards(), lines.entered, lines.exits,
                                 np.array([True, True]))
    assert lines.status[0] == LOST and values[0] < -90 < 0 < values[1]
    # In play: a planner that trusts nothing it cannot draw never eats; stalling, one that trusts does (a small
    # penalty here: on 6x6 the food is never far, so a living line next to it is worth almost the apple).
    cautious, trusting = (play_games(PlannerAgent(BlindEater(6, 6, seed=1), unsure_penalty=penalty, stall_steps=6),
                                     6, 6, num_games=3, seed=10, max_steps=80, progress=False)
                          for penalty in (None, 0.25))
    assert cautious["mean_apples"] == 0 and trusting["mean_apples"] >= 3


def test_detours_and_traps_right_after_the_move_send_the_plan_to_the_search():
    board = encode_observation(SnakeState(6, 6, ((2, 2), (2, 1), (2, 0)), (2, 5)))[None]
    planner = ModelPlanner(FastOracle(6, 6))
    toward, away = (planner.imagine(board, np.array([1]), np.array([action])) for action in (1, 0))
    plans = [Plan(lines.actions[0], lines.boards[0], int(lines.status[0])) for lines in (toward, away)]
    assert planner.detours(np.repeat(board, 2, axis=0), plans).tolist() == [False, True]
    # Up leads into a corner the body walls in: a trap right after the move. A plan whose later (wrongly
    # imagined) boards look fine is sent to the search only when the board after the move is checked.
    snake = ((2, 0), (2, 1), (1, 1), (0, 1), (0, 2), (0, 3), (0, 4), (1, 4), (2, 4))
    start = encode_observation(SnakeState(5, 5, snake, (4, 4)))[None]
    gated = ModelPlanner(FastOracle(5, 5), gate_next=True)
    into_corner = gated.imagine(start, np.array([1]), np.array([0]))
    plan = Plan(into_corner.actions[0, :1].repeat(2), np.concatenate([into_corner.boards[0, :1], start]), 0)
    assert gated.risky([plan]).tolist() == [True]
    assert ModelPlanner(FastOracle(5, 5), gate_next=False).risky([plan]).tolist() == [False]


def test_every_planner_flag_reaches_its_config_field():
    import argparse

    from snake_world_eqm.agents.flags import PLANNER_FLAGS, add_planner_arguments
    from snake_world_eqm.agents.planner import planner_options_from_args

    parser = argparse.ArgumentParser()
    add_planner_arguments(parser)
    args = parser.parse_args(["--planner-init-scale", "0", "--planner-search-init-scale", "0.5",
                              "--planner-stall-init-scale", "1", "--planner-rollouts", "3"])
    options = planner_options_from_args(args)
    assert options == {"init_scale": 0.0, "search_init_scale": 0.5, "stall_init_scale": 1.0, "rollouts": 3}
    assert all(hasattr(PlannerConfig(), name) for name, _, _ in PLANNER_FLAGS.values())
    assert planner_options_from_args(parser.parse_args([])) == {}  # no flag: the config's own defaults
