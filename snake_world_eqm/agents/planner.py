"""Model-predictive planning inside the world model: imagined rollouts, spent where they matter.

Every board the planner looks at comes from `model.sample()`; it never calls the rules engine or the
simulator. A *line* is one imagined future: a first action (held with ``action=``, or sampled), then
the model's own sampled actions, one `sample` call per imagined step for every line of every game at
once. A line ends when the model predicts a death (the all-empty board), an apple (the snake grows:
where the next food appears is random, so nothing after it is imagined), a board that is not a board
(not exactly one head: the model is lost), or at the horizon.

Each game keeps a *plan*: the line it is following. A decision costs one sample per game while the
real board matches the plan's next board (the plan is shifted and extended by one imagined step), and
`horizon` samples after an apple (a new plan is imagined). The expensive search runs only where the
plan is risky (it ends in a predicted death, an unreadable board, or with the tail cut off from the
head, or, `gate_next`, right after this move), where the plan's next move is a detour (`gate_detour`:
it neither eats nor brings the food nearer by the time-aware search), where the snake stalls (no apple
for `stall_steps` steps) or repeats a board since its last apple, and, optionally, where noise seeds
disagree on the action (`gate_seeds`). The search imagines
`rollouts` lines for each first action and takes the action of the best line, which becomes the plan.

Lines are valued by predicted death (the later the better), apples (the sooner the better), and, at
their end, room to move, a way to the tail and, at the horizon, the food as an apple discounted by when
the head can first reach it (`food_eta`). After an imagined apple the predicted food cell is a guess,
so that board is valued by room and tail only.
A line that the model cannot draw to its end (it loses the head at an apple) ranks below every living
one, except where play is stalling: then it is valued from the board before the apple
(`unsure_penalty`), unless the food cell has no way on.

The plan's descents start at the origin (`init_scale=0`: the model's deterministic policy, which leaves
the teacher's move least often), the search's at EqM's noise (`search_init_scale=1`), so that the lines
of one first move differ. How each default was chosen is logged in docs/results/README.md.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from snake_world_eqm.agents.base import Agent, as_numpy_long, check_obs, model_device, sample_model
from snake_world_eqm.agents.flags import MAX_HORIZON, MAX_ROLLOUTS, PLANNER_FLAGS
from snake_world_eqm.eqm import check_init_scale
from snake_world_eqm.game.encoding import BODY_UP, EMPTY, FOOD, HEAD_ALONE, HEAD_LEFT, HEAD_UP, TAIL
from snake_world_eqm.game.geometry import (
    grid_distances,
    head_counts,
    is_terminal,
    neck_directions,
    neighbours,
    snake_lengths,
)
from snake_world_eqm.game.state import NUM_ACTIONS

# How a line ended.
ALIVE, ATE, DIED, LOST = 0, 1, 2, 3
# Tiers of line values: any living line beats any unreadable one, which beats any predicted death.
DEATH_BASE, LOST_BASE = -100.0, -50.0


@dataclass
class PlannerConfig:
    """Knobs of the planner; the defaults are the best measured setting (docs/results/README.md)."""

    horizon: int = 16  # imagined steps per line (8-48 are sensible on 10x10)
    rollouts: int = 2  # lines per first action in a search (noise seeds make them differ)
    gate: str = "risk"  # "risk": search only where the plan is risky or play stalls; "always": every move
    gate_seeds: int = 0  # extra free samples per decision: search where their action differs from the plan's
    num_steps: int | None = None  # sampler steps (None: the model config's)
    init_scale: float = 0.0  # where the plan's imagined steps start their descent: 1 EqM's noise, 0 the origin
    search_init_scale: float | None = 1.0  # the same for the search's lines (None: init_scale); noise makes the
    # `rollouts` lines of one first action differ, the origin makes them one line
    stall_init_scale: float | None = None  # the same for searches while play stalls or repeats a board (None:
    # search_init_scale); lines that differ are what can break a cycle
    food_value: float = 2.0  # an imagined apple, discounted by when it comes
    discount: float = 0.97
    food_weight: float = 0.5  # nearness of reachable food at the horizon
    space_weight: float = 1.0  # cells reachable at a line's end (time-aware), as a fraction of the board
    trap_value: float = -10.0  # a line ending where the head cannot get back to its vacating body
    prior_bonus: float = 0.05  # ties go to the plan's own first action
    repeat_penalty: float = 3.0  # when stalling or looping: a first move onto a board already seen
    stall_steps: int | None = None  # steps without an apple before a search; None: cells of the board
    food_eta: bool = False  # value reachable food at a line's end as an apple discounted by its arrival time
    wait_weight: float = 0.0  # the next apple after an imagined one, discounted by `expected_food_wait`
    unsure_penalty: float | None = None  # e.g. 1.0: stalling, an apple the model cannot draw (it loses the head) is
    # valued from the board before it, minus this, unless the food cell has no way on; None: never trusted
    gate_next: bool = False  # also search where the board right after the plan's next move is a trap
    gate_detour: bool = False  # also search where the plan's next move does not bring reachable food nearer
    search_after_apple: bool = False  # also search the first move after each apple (the route to new food)
    tie_noise: float = 1e-3  # seeded random tie-breaking, so equal lines do not always resolve the same way
    seed: int = 0
    max_batch: int = 2048  # boards per `sample` call

    def __post_init__(self) -> None:
        for name, ceiling in (("horizon", MAX_HORIZON), ("rollouts", MAX_ROLLOUTS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= ceiling:
                raise ValueError(f"planner {name} must be an integer from 1 to {ceiling}, got {value!r} "
                                 f"(each searched board imagines 4 x rollouts lines of horizon steps)")
        if self.gate not in ("risk", "always"):
            raise ValueError(f"planner gate must be 'risk' or 'always', got {self.gate!r}")
        if self.gate_seeds < 0:
            raise ValueError(f"planner gate_seeds must be at least 0, got {self.gate_seeds}")
        check_init_scale(self.init_scale, "planner init_scale")
        for name in ("search_init_scale", "stall_init_scale"):
            if getattr(self, name) is not None:
                check_init_scale(getattr(self, name), f"planner {name}")


def planner_options_from_args(args) -> dict:
    """PlannerConfig overrides from parsed flags (`agents.flags`); a bad value exits naming its flag."""
    options = {}
    for flag, (name, _, _) in PLANNER_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        try:
            PlannerConfig(**{name: value})
        except ValueError as error:
            raise SystemExit(f"{flag} {value}: {error}") from None
        options[name] = value
    return options


@dataclass
class PlannerStats:
    """Cost and behaviour counters (reported by evaluation and benchmarks/planner.py)."""

    decisions: int = 0
    searches: int = 0  # decisions that ran the full search
    sample_calls: int = 0  # `model.sample` calls
    boards_sampled: int = 0  # boards passed to `model.sample`
    field_evaluations: int = 0  # boards x sampler steps (the EqM field runs once per board per step)
    plan_reuses: int = 0  # decisions whose plan came from the previous move (its next board was right)
    stall_searches: int = 0  # searches triggered by a stall or a repeated board
    seconds: float = 0.0  # wall clock inside the planner
    cpu_seconds: float = 0.0  # this process's CPU time inside the planner (fairer on a shared machine)

    def as_dict(self) -> dict:
        result = asdict(self)
        per = max(self.decisions, 1)
        result.update(field_evaluations_per_decision=self.field_evaluations / per,
                      boards_per_decision=self.boards_sampled / per, ms_per_decision=1000 * self.seconds / per,
                      cpu_ms_per_decision=1000 * self.cpu_seconds / per,
                      search_rate=self.searches / per)
        return result


@dataclass
class Lines:
    """Imagined lines: per line, its actions and predicted boards (padded past its end), how many steps it
    ran and how it ended."""

    actions: np.ndarray  # (N, T) int64, -1 past the end
    boards: np.ndarray  # (N, T, H, W) int8
    steps: np.ndarray  # (N,) steps imagined
    status: np.ndarray  # (N,) ALIVE / ATE / DIED / LOST
    entered: np.ndarray | None = None  # (N,) code of the cell the last move entered, read off the board before
    # it (-1: off the board); for LOST lines the recorded last board is that board, the last readable one
    exits: np.ndarray | None = None  # (N,) free or tail cells next to that cell, the head's own cell aside

    def end_boards(self) -> np.ndarray:
        last = np.maximum(self.steps - 1, 0)
        return self.boards[np.arange(self.steps.size), last]


@dataclass
class Plan:
    """The line a game follows: actions still to play, the boards they lead to, and how the line ends."""

    actions: np.ndarray  # (k,)
    boards: np.ndarray  # (k, H, W)
    status: int
    entered: int = -1  # the cell code the last move entered and its ways on (see `Lines.entered`)
    exits: int = 0

    def shifted(self) -> Plan | None:
        if self.actions.size <= 1:
            return None
        return Plan(self.actions[1:], self.boards[1:], self.status, self.entered, self.exits)


@dataclass
class _Memory:
    """Per game, carried from move to move: steps since the last apple, boards seen since then, and the
    snake's length on the last real board (a longer snake now has eaten: whether it did is read off the real
    boards, not the imagined ones, which can be wrong about an apple)."""

    since_food: int = 0
    seen: set = field(default_factory=set)
    length: int = 0


# A game's memory is found by the board its plan expected next. Where the model predicted that board wrong
# (a few cells), the nearest expected board within this many cells is the same game: without it, one wrong
# prediction per lap of a cycle wipes the stall detector's count and the cycle is never noticed.
MEMORY_MATCH_CELLS = 6


def vacate_times(boards: np.ndarray) -> np.ndarray:
    """(N, H, W) steps until each snake cell is free (the tail 1, the head the snake's length), 0 elsewhere.

    Follows the body pointers from the head, all boards at once. A predicted board may be broken: cells the
    chain does not reach never free up (a large number), so a broken board looks cramped, not roomy.
    """
    count, height, width = boards.shape
    flat = boards.reshape(count, -1).astype(np.int64)
    snake = flat >= HEAD_ALONE
    times = np.where(snake, height * width * 4, 0)
    is_head = (flat >= HEAD_ALONE) & (flat <= HEAD_LEFT)
    walking = is_head.any(axis=1)
    cell = is_head.argmax(axis=1)
    index = np.zeros(count, dtype=np.int64)
    order = np.zeros((count, height * width), dtype=np.int64) - 1
    rows = np.arange(count)
    delta_row, delta_col = np.array([-1, 0, 1, 0]), np.array([0, 1, 0, -1])
    for _ in range(height * width):
        if not walking.any():
            break
        order[rows[walking], cell[walking]] = index[walking]
        code = flat[rows, cell]
        pointer = np.where(code >= BODY_UP, code - BODY_UP, code - HEAD_UP)
        ends = (code == HEAD_ALONE) | (code == TAIL) | (code < HEAD_ALONE)
        walking &= ~ends
        r, c = cell // width + delta_row[pointer % 4], cell % width + delta_col[pointer % 4]
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        nxt = np.clip(r, 0, height - 1) * width + np.clip(c, 0, width - 1)
        walking &= inside & snake[rows, nxt] & (order[rows, nxt] < 0)
        cell = np.where(walking, nxt, cell)
        index += walking
    length = order.max(axis=1, keepdims=True) + 1
    times = np.where(order >= 0, length - order, times)
    return times.reshape(count, height, width)


def arrival_times(boards: np.ndarray) -> np.ndarray:
    """(N, H, W) time-aware breadth-first distance from the head: a snake cell may be entered once it has
    moved away. -1 where the head cannot arrive (and at the head). Apples eaten on the way (which delay the
    tail) are ignored."""
    times = vacate_times(boards)
    head = (boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)
    arrival = np.full(boards.shape, -1, dtype=np.int64)
    visited, frontier = head.copy(), head.copy()
    for step in range(1, boards.shape[1] * boards.shape[2] + 1):
        frontier = neighbours(frontier) & (times <= step) & ~visited
        if not frontier.any():
            break
        arrival[frontier] = step
        visited |= frontier
    return arrival


def escape_search(boards: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time-aware breadth-first search from the head (`arrival_times`).

    Returns (room (N,) cells reachable, free or vacated; escapes (N,) the head reaches a vacated snake cell,
    from where it can follow its own tail forever, or the snake is a lone head; food_distance (N,) steps to
    the food, -1 when out of reach).
    """
    arrival = arrival_times(boards)
    head = (boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)
    snake = boards >= HEAD_ALONE
    reached = arrival > 0
    room = reached.sum(axis=(1, 2))
    lone = head.any(axis=(1, 2)) & (snake.sum(axis=(1, 2)) == 1)
    escapes = (reached & snake).any(axis=(1, 2)) | lone
    food_distance = np.where(boards == FOOD, arrival, -1).max(axis=(1, 2))
    return room, escapes, food_distance


def expected_food_wait(boards: np.ndarray) -> np.ndarray:
    """(N,) mean time-aware distance from the head to the free cells (food ignored): where the next apple
    appears is uniform over free cells, so this is how long the snake should expect to wait for it. A free
    cell the head can never reach counts as the board's cell count. Bodies that wall in free pockets make
    every later apple slow; this is what such boards cost."""
    cells = boards.shape[1] * boards.shape[2]
    arrival = arrival_times(boards)
    free = (boards == EMPTY) | (boards == FOOD)
    waits = np.where(arrival > 0, arrival, cells)
    count = free.sum(axis=(1, 2))
    return np.where(count > 0, (waits * free).sum(axis=(1, 2)) / np.maximum(count, 1), 0.0)


def entered_cells(boards: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Read off the boards where each head moves by `actions`: (codes (N,) of the cell entered, -1 off the
    board or without a head; exits (N,) cells next to it, the head's own cell aside, that are free or the
    tail). Reading the board is not simulating it: what happens there is still the model's prediction."""
    count, height, width = boards.shape
    if count == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat = ((boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)).reshape(count, -1)
    head, rows = flat.argmax(axis=1), np.arange(count)
    deltas = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])
    row, col = head // width + deltas[actions, 0], head % width + deltas[actions, 1]
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width) & flat.any(axis=1)
    row, col = np.clip(row, 0, height - 1), np.clip(col, 0, width - 1)
    codes = np.where(inside, boards[rows, row, col].astype(np.int64), -1)
    exits = np.zeros(count, dtype=np.int64)
    for d_row, d_col in deltas:
        r, c = row + d_row, col + d_col
        on_board = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        code = boards[rows, np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)]
        exits += on_board & np.isin(code, (EMPTY, FOOD, TAIL))
    return codes, np.where(inside, exits, 0)


def tail_cut_off(boards: np.ndarray) -> np.ndarray:
    """(N,) the head cannot get back to its own (vacating) body: a trap, sooner or later."""
    return ~escape_search(boards)[1]




def tail_following_actions(boards: np.ndarray) -> np.ndarray:
    """(N,) the move that keeps following the tail the long way round, read off (imagined) boards.

    Among moves onto a free cell or the tail (never the food: eating stops the tail), take the one whose
    cell is farthest from the tail by a breadth-first search that can still reach it; a move that loses
    the tail only when no other exists. Lines that hold these moves stay alive while the food is unsafe.
    """
    count, height, width = boards.shape
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    tail = boards == TAIL
    distance = grid_distances(tail, (boards == EMPTY) | (boards == FOOD) | tail)
    flat_head = ((boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)).reshape(count, -1).argmax(axis=1)
    head_row, head_col = flat_head // width, flat_head % width
    rows = np.arange(count)
    neck = neck_directions(boards)
    scores = np.full((count, NUM_ACTIONS), -np.inf)
    for action, (d_row, d_col) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1))):
        r, c = head_row + d_row, head_col + d_col
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        r, c = np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)
        code = boards[rows, r, c]
        enterable = inside & ((code == EMPTY) | (code == TAIL)) & (neck != action)
        scores[:, action] = np.where(enterable, np.where(distance[rows, r, c] >= 0, distance[rows, r, c], -0.5),
                                     np.where(inside & (code == FOOD), -1.0, -np.inf))
    return scores.argmax(axis=1).astype(np.int64)


class ModelPlanner:
    """Model-predictive control inside a world model with the `SnakeWorldEqM.sample` interface."""

    def __init__(self, model, config: PlannerConfig | None = None, **overrides) -> None:
        base = asdict(config) if config is not None else {}
        self.config = PlannerConfig(**{**base, **overrides})
        self.model = model.eval()
        self.generator = torch.Generator(device=model_device(model)).manual_seed(self.config.seed)
        self.tie_rng = np.random.default_rng(self.config.seed)
        self.stats = PlannerStats()
        self._plans: dict[bytes, Plan] = {}  # keyed by the board the plan expects next
        self._memory: dict[bytes, _Memory] = {}  # keyed by that board with its food masked

    # ---- the model -------------------------------------------------------------------------------------

    def sample(self, boards: np.ndarray, actions: np.ndarray | None = None,
               init_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted next boards (N, H, W) int8 and actions (N,) for boards, free or with `actions` held;
        each descent starts from noise scaled by `init_scale` (None: the config's `init_scale`)."""
        init_scale = self.config.init_scale if init_scale is None else init_scale
        next_boards, chosen = [], []
        for start in range(0, boards.shape[0], self.config.max_batch):
            chunk = slice(start, start + self.config.max_batch)
            out = sample_model(self.model, boards[chunk], generator=self.generator,
                               action=None if actions is None else actions[chunk], num_steps=self.config.num_steps,
                               init_scale=init_scale)
            # Decoded boards hold codes 0..11: straight to int8 on the host, one copy.
            next_boards.append(out.next_board.detach().to(device="cpu", dtype=torch.int8).numpy())
            chosen.append(as_numpy_long(out.action))
            self.stats.sample_calls += 1
            self.stats.field_evaluations += int(as_numpy_long(out.num_steps).sum())
        self.stats.boards_sampled += boards.shape[0]
        return np.concatenate(next_boards), np.concatenate(chosen)

    def imagine(self, boards: np.ndarray, budgets: np.ndarray, first_actions: np.ndarray | None = None,
                follow_tail: np.ndarray | None = None, init_scale: float | None = None) -> Lines:
        """Roll every line forward inside the model: one `sample` call per imagined step for all lines that
        sample their action, one for all lines that hold it.

        boards (N, H, W): where each line starts; budgets (N,): steps to imagine; first_actions (N,): held
        for the first step, or None to sample it; follow_tail (N,) bool: after the first step, the line holds
        the tail-following move (`tail_following_actions`) instead of the model's sampled action: the safe
        way to wait that a food-seeking policy never imagines; init_scale: passed to every `sample`.
        """
        boards = np.asarray(boards, dtype=np.int8)
        count, horizon = boards.shape[0], int(budgets.max(initial=0))
        follow_tail = np.zeros(count, dtype=bool) if follow_tail is None else np.asarray(follow_tail, dtype=bool)
        lines = Lines(actions=np.full((count, horizon), -1, dtype=np.int64),
                      boards=np.zeros((count, horizon) + boards.shape[1:], dtype=np.int8),
                      steps=np.zeros(count, dtype=np.int64), status=np.full(count, ALIVE, dtype=np.int64),
                      entered=np.full(count, -1, dtype=np.int64), exits=np.zeros(count, dtype=np.int64))
        current, running = boards.copy(), budgets > 0
        for t in range(horizon):
            rows = np.flatnonzero(running & (budgets > t))
            if rows.size == 0:
                break
            if t == 0 and first_actions is not None:
                held_rows, held = rows, np.asarray(first_actions, dtype=np.int64)[rows]
            else:
                held_rows = rows[follow_tail[rows]]
                held = tail_following_actions(current[held_rows])
            free_rows = np.setdiff1d(rows, held_rows, assume_unique=True)
            # Reversing into the neck is death by the rules whatever the model says: no sample needed.
            into_neck = held == (neck_directions(current[held_rows]) if held_rows.size else held)
            self._end(lines, held_rows[into_neck], t, held[into_neck], DIED)
            running[held_rows[into_neck]] = False
            held_rows, held = held_rows[~into_neck], held[~into_neck]
            for part, actions in ((free_rows, None), (held_rows, held)):
                if part.size:
                    self._advance(lines, current, running, part, t, actions, init_scale)
        return lines

    def _advance(self, lines: Lines, current: np.ndarray, running: np.ndarray, rows: np.ndarray, t: int,
                 actions: np.ndarray | None, init_scale: float | None) -> None:
        """One imagined step for `rows`: sample, record, and end the lines that died, ate or got lost."""
        predicted, chosen = self.sample(current[rows], actions, init_scale)
        # A sampled move into the neck is death by the rules even where the model predicts otherwise (it
        # does at length 2, where the neck is the tail): read it off the board, like held moves.
        died = is_terminal(predicted) | (chosen == neck_directions(current[rows]))
        predicted[died] = 0
        longer = snake_lengths(predicted) - snake_lengths(current[rows])
        lost = ~died & ((head_counts(predicted) != 1) | (longer < 0))
        ate = ~died & ~lost & (longer > 0)
        lines.actions[rows, t] = chosen
        lines.entered[rows], lines.exits[rows] = entered_cells(current[rows], chosen)
        # An unreadable prediction keeps the board it came from: the last one the planner can read.
        predicted[lost] = current[rows[lost]]
        lines.boards[rows, t] = predicted
        lines.steps[rows] = t + 1
        for mask, status in ((died, DIED), (lost, LOST), (ate, ATE)):
            lines.status[rows[mask]] = status
            running[rows[mask]] = False
        current[rows] = predicted

    @staticmethod
    def _end(lines: Lines, rows: np.ndarray, t: int, actions: np.ndarray, status: int) -> None:
        lines.actions[rows, t] = actions
        lines.boards[rows, t] = 0  # the terminal (all-empty) board
        lines.steps[rows] = t + 1
        lines.status[rows] = status

    # ---- values ----------------------------------------------------------------------------------------

    def line_values(self, status: np.ndarray, steps: np.ndarray, end_boards: np.ndarray,
                    entered: np.ndarray | None = None, exits: np.ndarray | None = None,
                    trust: np.ndarray | None = None) -> np.ndarray:
        """(N,) value of lines from how and when they ended and the board they ended on."""
        cfg = self.config
        values = np.where(status == DIED, DEATH_BASE + steps, LOST_BASE + steps).astype(np.float64)
        alive, ate = status == ALIVE, status == ATE
        if cfg.unsure_penalty is not None and entered is not None:
            # The model cannot draw some apples (its blind spot: it loses the head). Where play is stalling
            # (`trust`), such a line is read off the board it came from: the apple, unless the food cell has
            # no way on (a free cell or the tail). Elsewhere it stays below every living line: whether the
            # snake survives that apple is unknown, and taking it blind costs more games than it saves.
            fed = (status == LOST) & (entered == FOOD) & (True if trust is None else trust)
            pocket = fed & (exits == 0)
            values[pocket] = DEATH_BASE + steps[pocket]
            fed &= ~pocket
            if fed.any():
                values[fed] = (self.board_values(end_boards[fed], with_food=False) - cfg.unsure_penalty
                               + cfg.food_value * cfg.discount ** (steps[fed] - 1))
        if alive.any() and cfg.food_eta:
            # The food at a living line's end is worth an apple when the head can first get there.
            values[alive] = self.board_values(end_boards[alive], with_food=False)
            food_distance = escape_search(end_boards[alive])[2]
            values[alive] += np.where(food_distance > 0,
                                      cfg.food_value * cfg.discount ** (steps[alive] - 1 + food_distance), 0.0)
        elif alive.any():
            values[alive] = self.board_values(end_boards[alive], with_food=True)
        if ate.any():
            # Where the next food appears is random: the predicted food cell is ignored (room and escape only).
            unfed = np.where(end_boards[ate] == FOOD, 0, end_boards[ate])
            values[ate] = cfg.food_value * cfg.discount ** (steps[ate] - 1) + self.board_values(unfed, False)
            if cfg.wait_weight:
                wait = expected_food_wait(unfed)
                values[ate] += cfg.wait_weight * cfg.food_value * cfg.discount ** (steps[ate] - 1 + wait)
        return values

    def board_values(self, boards: np.ndarray, with_food: bool) -> np.ndarray:
        """(N,) room to move, a way back to the vacating body (else `trap_value`), and nearness of the food."""
        cfg = self.config
        cells = boards.shape[1] * boards.shape[2]
        room, escapes, food_distance = escape_search(boards)
        values = cfg.space_weight * room / cells + np.where(escapes, 0.0, cfg.trap_value)
        if with_food:
            values += np.where(food_distance >= 0, cfg.food_weight * (1.0 - food_distance / cells), 0.0)
        return values

    def risky(self, plans: list[Plan]) -> np.ndarray:
        """(G,) the plan ends in a predicted death, an unreadable board, or with the tail cut off (with
        `gate_next`, also where the board right after this move has the tail cut off: the plan's end may be
        a wrong imagination, its next board is one fresh step of the model from the real board)."""
        status = np.array([plan.status for plan in plans])
        ends = np.stack([np.where(plan.boards[-1] == FOOD, 0, plan.boards[-1]) for plan in plans])
        risky = (status == DIED) | (status == LOST) | tail_cut_off(ends)
        if self.config.gate_next:
            following = np.stack([np.where(plan.boards[0] == FOOD, 0, plan.boards[0]) for plan in plans])
            risky |= ~is_terminal(following) & tail_cut_off(following)
        return risky

    @staticmethod
    def detours(boards: np.ndarray, plans: list[Plan]) -> np.ndarray:
        """(G,) the plan's next move neither eats nor brings the (time-aware) nearest way to the food one step
        nearer, though the food is reachable: a detour that a search must justify (safety) or undo."""
        following = np.stack([plan.boards[0] for plan in plans])
        food_now = escape_search(boards)[2]
        food_next = escape_search(following)[2]
        ate = snake_lengths(following) > snake_lengths(boards)
        return (food_now > 0) & ~ate & ~is_terminal(following) & (food_next != food_now - 1)

    # ---- deciding --------------------------------------------------------------------------------------

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(G,) actions for boards (G, H, W): follow or extend each game's plan, search where it is risky."""
        started, started_cpu = time.perf_counter(), time.process_time()
        boards = np.asarray(obs).astype(np.int8)
        count = boards.shape[0]
        cells = boards.shape[1] * boards.shape[2]
        keys = [board.tobytes() for board in boards]
        plans = [self._plans.get(key) for key in keys]
        memory = [self._recall(board) for board in boards]
        self.stats.plan_reuses += sum(plan is not None for plan in plans)
        plans = self._refresh_plans(boards, plans)
        stall_steps = self.config.stall_steps or cells
        stalled = np.array([m.since_food >= stall_steps or key in m.seen for m, key in zip(memory, keys)])
        if self.config.gate == "always":
            search = np.ones(count, dtype=bool)
        else:
            search = self.risky(plans) | stalled | self._seeds_disagree(boards, plans)
            if self.config.gate_detour:
                search |= self.detours(boards, plans)
            if self.config.search_after_apple:
                search |= np.array([m.since_food == 0 for m in memory])
        for stalling in (False, True):  # stalled games may draw their lines from another init_scale
            rows = np.flatnonzero(search & (stalled == stalling))
            if rows.size == 0:
                continue
            found = self.search(boards[rows], [plans[i] for i in rows], [memory[i] for i in rows], stalled[rows])
            for row, plan in zip(rows, found):
                plans[row] = plan
        self.stats.searches += int(search.sum())
        self.stats.stall_searches += int((search & stalled).sum())
        actions = np.array([int(plan.actions[0]) for plan in plans], dtype=np.int64)
        self._remember(boards, keys, plans, memory)
        self.stats.decisions += count
        self.stats.seconds += time.perf_counter() - started
        self.stats.cpu_seconds += time.process_time() - started_cpu
        return actions

    def _refresh_plans(self, boards: np.ndarray, plans: list[Plan | None]) -> list[Plan]:
        """Imagine a plan where there is none (`horizon` steps of the model's own play) and extend the
        living ones back to the horizon; one batched `imagine` for both."""
        horizon = self.config.horizon
        starts, budgets = [], []
        for board, plan in zip(boards, plans):
            if plan is None:
                starts.append(board)
                budgets.append(horizon)
            elif plan.status == ALIVE and plan.actions.size < horizon:
                starts.append(plan.boards[-1])
                budgets.append(horizon - plan.actions.size)
            else:
                starts.append(board)
                budgets.append(0)
        lines = self.imagine(np.stack(starts), np.array(budgets))
        fresh = []
        for index, plan in enumerate(plans):
            steps = int(lines.steps[index])
            new_actions, new_boards = lines.actions[index, :steps], lines.boards[index, :steps]
            if plan is None:
                fresh.append(Plan(new_actions, new_boards, int(lines.status[index]), int(lines.entered[index]),
                                  int(lines.exits[index])))
            elif steps:
                fresh.append(Plan(np.concatenate([plan.actions, new_actions]),
                                  np.concatenate([plan.boards, new_boards]), int(lines.status[index]),
                                  int(lines.entered[index]), int(lines.exits[index])))
            else:
                fresh.append(plan)
        return fresh

    def _seeds_disagree(self, boards: np.ndarray, plans: list[Plan]) -> np.ndarray:
        """(G,) another noise seed samples a different action than the plan's (off when gate_seeds is 0)."""
        disagree = np.zeros(boards.shape[0], dtype=bool)
        planned = np.array([int(plan.actions[0]) for plan in plans])
        for _ in range(self.config.gate_seeds):
            disagree |= self.sample(boards, init_scale=1.0)[1] != planned  # noise seeds, whatever the plan uses
        return disagree

    def search(self, boards: np.ndarray, plans: list[Plan], memory: list[_Memory],
               stalled: np.ndarray) -> list[Plan]:
        """The best line over every first action x `rollouts` imagined lines (the current plan competes too)."""
        cfg = self.config
        # Per first action: `rollouts` lines of the model's own play, and one that follows the tail.
        per_action = cfg.rollouts + 1
        count, per_game = boards.shape[0], NUM_ACTIONS * per_action
        starts = np.repeat(boards, per_game, axis=0)
        first = np.tile(np.repeat(np.arange(NUM_ACTIONS), per_action), count)
        follow_tail = np.tile(np.arange(per_action) == cfg.rollouts, NUM_ACTIONS * count)
        init_scale = cfg.search_init_scale
        if stalled.all() and cfg.stall_init_scale is not None:
            init_scale = cfg.stall_init_scale
        lines = self.imagine(starts, np.full(starts.shape[0], cfg.horizon), first, follow_tail, init_scale)
        values = self.line_values(lines.status, lines.steps, lines.end_boards(), lines.entered,
                                  lines.exits, np.repeat(stalled, per_game)).reshape(count, per_game)
        plan_values = self.line_values(np.array([p.status for p in plans]), np.array([p.actions.size for p in plans]),
                                       np.stack([p.boards[-1] for p in plans]), np.array([p.entered for p in plans]),
                                       np.array([p.exits for p in plans]), stalled)
        first = first.reshape(count, per_game)
        planned = np.array([int(p.actions[0]) for p in plans])
        # Ties go to the model's own choice, unless play is stalling: then a move that changes the plan is
        # wanted, and moves back onto boards seen since the last apple are penalised, unless the line eats:
        # an apple ends the cycle, even where its first move retraces it.
        bonus = np.where(stalled, 0.0, cfg.prior_bonus)
        values = values + (first == planned[:, None]) * bonus[:, None]
        plan_values = plan_values + bonus
        next_keys = lines.boards[:, 0].reshape(count, per_game, -1)
        eats = (lines.status == ATE).reshape(count, per_game)
        for game in np.flatnonzero(stalled):
            seen = memory[game].seen
            repeats = np.array([row.tobytes() in seen for row in next_keys[game]]) & ~eats[game]
            values[game] -= cfg.repeat_penalty * repeats
            plan_values[game] -= cfg.repeat_penalty * (plans[game].boards[0].tobytes() in seen
                                                       and plans[game].status != ATE)
        values += cfg.tie_noise * self.tie_rng.random(values.shape)
        best = values.argmax(axis=1)
        chosen = []
        for game in range(count):
            if plan_values[game] >= values[game, best[game]]:
                chosen.append(plans[game])
                continue
            line = game * per_game + int(best[game])
            steps = int(lines.steps[line])
            chosen.append(Plan(lines.actions[line, :steps], lines.boards[line, :steps], int(lines.status[line]),
                               int(lines.entered[line]), int(lines.exits[line])))
        return chosen

    def _remember(self, boards: np.ndarray, keys: list[bytes], plans: list[Plan], memory: list[_Memory]) -> None:
        """Keep each plan (shifted) under the board it expects next, and each game's memory with it."""
        next_plans, next_memory = {}, {}
        for board, key, plan, mem in zip(boards, keys, plans, memory):
            expected = plan.boards[0]
            if is_terminal(expected[None])[0]:
                continue
            mem.seen.add(key)
            length = int(snake_lengths(board[None])[0])
            ate = snake_lengths(expected[None])[0] > length
            next_memory[_masked_key(expected)] = _Memory(mem.since_food + 1, mem.seen, length)
            shifted = plan.shifted()
            if shifted is not None and not ate:  # after an apple the real food differs: a new plan is imagined
                next_plans[expected.tobytes()] = shifted
        # Only last move's entries can match: games that ended or diverged drop out here.
        self._plans, self._memory = next_plans, next_memory

    def _recall(self, board: np.ndarray) -> _Memory:
        """The memory of this board's game: the one stored under the board its plan expected (food aside),
        else under the nearest expected board within MEMORY_MATCH_CELLS cells; a new one where none is
        near or where the snake has grown since (it ate)."""
        key = _masked_key(board)
        memory = self._memory.get(key)
        if memory is None and self._memory:
            keys = list(self._memory)
            expected = np.frombuffer(b"".join(keys), dtype=np.int8).reshape(len(keys), -1)
            differing = (expected != np.frombuffer(key, dtype=np.int8)).sum(axis=1)
            nearest = int(differing.argmin())
            memory = self._memory[keys[nearest]] if differing[nearest] <= MEMORY_MATCH_CELLS else None
        if memory is None or snake_lengths(board[None])[0] > memory.length:
            return _Memory()
        return memory

    def reset(self) -> None:
        self._plans, self._memory = {}, {}


def _masked_key(board: np.ndarray) -> bytes:
    return np.where(board == FOOD, 0, board).astype(np.int8).tobytes()


def imagined_risk(planner: ModelPlanner, boards: np.ndarray, horizon: int) -> np.ndarray:
    """(N,) how risky the model's own play looks from each board: one free imagined line of `horizon` steps.

    Higher is riskier: a predicted death (sooner is worse) > an unreadable board > the tail cut off at the
    line's end > less room at the end. An uncertainty signal for evaluation, from the model alone.
    """
    lines = planner.imagine(np.asarray(boards, dtype=np.int8), np.full(len(boards), horizon))
    ends = lines.end_boards()
    ends = np.where(ends == FOOD, 0, ends)
    room, escapes, _ = escape_search(ends)
    room = room / (ends.shape[1] * ends.shape[2])
    died, lost = lines.status == DIED, lines.status == LOST
    score = np.where(died, 3.0 - lines.steps / (horizon + 1), 0.0) + np.where(lost, 2.0, 0.0)
    alive = ~died & ~lost
    score[alive] = ~escapes[alive] * 1.0 + (1.0 - room[alive]) * 0.5
    return score


__all__ = ["MAX_HORIZON", "MAX_ROLLOUTS", "ModelPlanner", "PlannerAgent", "PlannerConfig", "PlannerStats",
           "imagined_risk", "planner_options_from_args"]


class PlannerAgent(Agent):
    """Model-predictive planning inside the world model (`ModelPlanner`) as an Agent.

    `PlannerAgent(model)` is the best planner measured; keyword arguments override `PlannerConfig`
    (horizon, rollouts, gate, gate_seeds, ...). It never calls the simulator: every board it looks at
    comes from `model.sample`. `stats` holds its cost (samples, field evaluations, searches, time).
    """

    name = "planner"
    deterministic = False  # the model samples from noise

    def __init__(self, model, config: PlannerConfig | None = None, **knobs) -> None:
        self.planner = ModelPlanner(model, config, **knobs)
        self.model = self.planner.model

    @property
    def config(self) -> PlannerConfig:
        return self.planner.config

    @property
    def stats(self) -> PlannerStats:
        return self.planner.stats

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return self.planner.act(check_obs(obs))
