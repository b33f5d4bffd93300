"""`snake-eqm app`: watch, steer and question the world model in the browser (Gradio).

Three layers, so the game logic is testable without a browser or gradio:

- `GameSession` holds one game and what the model says about its current board: its move, the four
  what-if successors, NAG steps, gradient norms and the disagreement between
  noise seeds. `step(action)` plays one move and compares the model's prediction with the real board.
- `DreamSession` is the page's dream mode ("play inside the model"): a real game and the model's dream of it,
  started from the same board and moved by the same actions (a person's or an agent's, the agent reading
  either board), with where they part: `simulator.DreamBesideReal` with agents, pictures and JSON.
- `build_app(model)` wires sessions to a Gradio Blocks page (gradio is imported there only: it is the
  optional `app` extra).

The action probabilities shown are the smoothed votes of `PROB_DRAWS` free descents from noise
(`model.sample(prob_draws=K)`, calibrated against the teacher by benchmarks/calibration.py). The softmax of the
settled action block is never shown: it is about 71/10/10/10 on every board (EqM drives the block to +-1), which
reads as confidence and is not; a model without `prob_draws` shows no probabilities and says why. The server takes no file uploads (the page has no file
input; a public Space must not be a file host) and keeps its temporary images in its own folder, capped and
swept (`CACHE_MAX_FILES`, `CACHE_SWEEP`). With no browser connected it does no work.

The Hub Space that runs this module is built and pushed by `snake_world_eqm.hub.space` (`snake-eqm push
--space-id`); its generated `app.py` calls `main` below.
"""

# No `from __future__ import annotations`: gradio reads the `gr.Request` annotation of a callback defined
# inside build_app, which only works when annotations are evaluated where the function is defined.
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snake_world_eqm.agents.base import sample_model
from snake_world_eqm.agents.factory import make_agent
from snake_world_eqm.agents.planner import PlannerAgent
from snake_world_eqm.agents.simple import ExpertAgent
from snake_world_eqm.app_args import build_parser
from snake_world_eqm.evaluation.metrics import comparable_boards, is_terminal
from snake_world_eqm.game import (
    ACTION_NAMES,
    EVENT_NAMES,
    MAX_BOARD_SIZE,
    MIN_BOARD_SIZE,
    Event,
    encode_observation,
    new_game,
    render_rgb_any,
    step,
)
from snake_world_eqm.pretrained import load_model as load_pretrained
from snake_world_eqm.shipped import PRETRAINED_10X10
from snake_world_eqm.simulator import DREAM_FOODS, WORLDS, DreamBesideReal

MISSING_GRADIO = 'snake-eqm app needs gradio: install the app extra with pip install "snake-world-eqm[app]"'
# Who picks the moves; the keys are what the API and the UI radio take.
CONTROLLERS = {"you": "you (buttons / arrow keys)", "eqm": "EqM agent", "planner": "planner", "expert": "A* expert"}
NOISE_SEEDS = 4  # independent noise draws per decision: their disagreement is one uncertainty signal
BOARD_PIXELS = 240  # the real board is drawn about this wide; what-ifs at half that
MISMATCH_COLOUR = (255, 215, 0)  # frame around cells the model got wrong
DEATH_TINT = (150, 20, 20)
# What the pictures' colours mean (game.render draws the boards; this module the frames and the tint).
LEGEND = ("**legend** · bright green: head · green fading to dark green: body toward the tail · red: apple · "
          "dark: empty · yellow frame: a cell the model predicted wrong · red tint: death (the model's empty board)")
PROB_DRAWS = 8  # noise draws whose smoothed votes are the shown action probabilities
PROBABILITIES_LABEL = (f"action probabilities: votes of {PROB_DRAWS} noise draws, smoothed (calibrated; "
                       "not the settled softmax, which reads ~71% on every board)")
PROBABILITIES_HIDDEN = (
    "**action probabilities: not shown.** The softmax of the model's settled action block is about "
    "71% / 10% / 10% / 10% on every board (the field drives the block to ±1), so it looks like confidence and "
    "is not. Calibrated probabilities will replace it; until then the disagreement between noise seeds, below, "
    "is the model's hesitation.")
CACHE_MAX_FILES = 2000  # temporary images kept at most (oldest deleted first) in the app's own folder
CACHE_SWEEP = (600, 1800)  # gradio's delete_cache: every 10 minutes delete images older than 30 minutes


# ----------------------------------------------------------------------------------------------------------
# The game and the model's view of it (no gradio)
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Analysis:
    """What the model says about one board, before a move is made."""

    action_probs: np.ndarray  # (4,) smoothed votes of PROB_DRAWS noise draws; else the settled softmax
    model_action: int  # the EqM agent's move: the sample from the origin (EqMAgent's default start)
    whatif: np.ndarray  # (4, H, W) predicted successor of each held action; all-EMPTY = predicted death
    whatif_death: np.ndarray  # (4,) bool
    nag_steps: int  # steps the sampler spent (fewer than configured when the adaptive stop fires)
    grad_norm: float  # field norm at the end of sampling
    action_grad_norm: float  # the action block's share of it
    seed_actions: list[int]  # the action each noise seed settled on
    seed_disagreement: float  # 1 - share of seeds that agree with the most common action
    seconds: float  # wall time of the two sampler calls
    calibrated: bool = True  # False: action_probs is the settled softmax (never shown as a probability)


@dataclass
class Transition:
    """One move: the model's prediction of the next board (for the action taken) against the real one."""

    action: int
    event: str
    predicted: np.ndarray  # (H, W)
    real: np.ndarray  # (H, W)
    mismatch: np.ndarray  # (H, W) bool, food placement excluded after eating (it is random)

    @property
    def match(self) -> bool:
        return not self.mismatch.any()


def supported_sizes(config) -> list[tuple[int, int]]:
    """Board sizes the model runs on: its own only, unless it was trained size-free."""
    own = (int(config.board_height), int(config.board_width))
    if getattr(config, "fixed_board_size", True):
        return [own]
    squares = [(n, n) for n in range(MIN_BOARD_SIZE, MAX_BOARD_SIZE + 1)]
    return squares if own in squares else [own, *squares]


class GameSession:
    """One game of Snake played by an agent or a person, with the model's view of every board."""

    def __init__(self, model, height: int | None = None, width: int | None = None, seed: int = 0,
                 num_seeds: int = NOISE_SEEDS, planner_depth: int = 2, initial_length: int = 3) -> None:
        config = model.config
        height = int(config.board_height if height is None else height)
        width = int(config.board_width if width is None else width)
        if (height, width) not in supported_sizes(config):
            raise ValueError(f"board size {height}x{width} is not one this model supports: "
                             f"{', '.join(f'{h}x{w}' for h, w in supported_sizes(config)[:6])}")
        if num_seeds < 1:
            raise ValueError(f"num_seeds must be at least 1, got {num_seeds}")
        self.model, self.height, self.width, self.seed = model, height, width, int(seed)
        self.num_seeds, self.planner_depth = num_seeds, planner_depth
        self.state = new_game(height, width, rng=self.seed, initial_length=initial_length)
        self.rng = np.random.default_rng(self.seed)  # food respawn, as in `snake-eqm play`
        self.generator = torch.Generator().manual_seed(self.seed)  # the model's noise: reproducible per seed
        self.board = encode_observation(self.state)
        self.score = self.steps = 0
        self.event = "start"
        self.done = False
        self.last: Transition | None = None
        self._planner: PlannerAgent | None = None
        self._expert = ExpertAgent()
        self.analysis: Analysis | None = self.analyse()

    def analyse(self) -> Analysis:
        """Sample the joint (action, next board) under several noise seeds and the four what-ifs."""
        started = time.perf_counter()
        boards = np.repeat(self.board[None].astype(np.int64), self.num_seeds, axis=0)
        free = sample_model(self.model, boards, generator=self.generator)
        held = sample_model(self.model, boards[:1].repeat(4, axis=0), generator=self.generator,
                            action=np.arange(4))
        votes = {"prob_draws": PROB_DRAWS} if takes_prob_draws(self.model) else {}
        origin = sample_model(self.model, boards[:1], generator=self.generator, init_scale=0.0, **votes)
        seconds = time.perf_counter() - started
        voted = getattr(origin, "action_probs", None)
        if voted is not None:
            probs = voted[0].detach().float().cpu().numpy()
        else:
            logits = free.action_logits[0].detach().float().cpu().numpy()
            probs = np.exp(logits - logits.max())
        seed_actions = free.action.cpu().numpy().astype(int)
        whatif = held.next_board.cpu().numpy().astype(np.int64)
        return Analysis(
            action_probs=probs / probs.sum(), model_action=int(origin.action[0]), whatif=whatif,
            whatif_death=is_terminal(whatif), nag_steps=int(free.num_steps[0]), grad_norm=float(free.grad_norm[0]),
            action_grad_norm=float(free.action_grad_norm[0]), seed_actions=seed_actions.tolist(),
            seed_disagreement=1.0 - np.bincount(seed_actions, minlength=4).max() / len(seed_actions),
            seconds=seconds, calibrated=voted is not None,
        )

    def agent_action(self, controller: str) -> int:
        """The move the named agent makes on the current board."""
        if self.done:
            raise ValueError("the game is over: start a new game")
        if controller == "eqm":
            return self.analysis.model_action
        if controller == "expert":
            return int(self._expert.act_batch(self.board[None])[0])
        if controller == "planner":
            if self._planner is None:
                self._planner = PlannerAgent(self.model, seed=self.seed)  # the best measured planner
            return int(self._planner.act_batch(self.board[None])[0])
        raise ValueError(f"controller must be one of {sorted(set(CONTROLLERS) - {'you'})}, got {controller!r}")

    def step(self, action: int) -> Transition:
        """Play `action`; the prediction compared is the what-if the model made for that action."""
        if self.done:
            raise ValueError("the game is over: start a new game")
        if isinstance(action, bool) or not isinstance(action, (int, np.integer)) or not 0 <= action < 4:
            raise ValueError(f"action must be an int in 0..3 ({', '.join(ACTION_NAMES)}), got {action!r}")
        predicted = self.analysis.whatif[action]
        result = step(self.state, int(action), self.rng)
        real = np.asarray(result.observation)
        event = Event(int(result.event))
        shown_predicted, shown_real = comparable_boards(predicted[None], real[None], [int(event)])
        self.last = Transition(int(action), EVENT_NAMES[event], predicted, real,
                               (shown_predicted != shown_real)[0])
        self.board, self.event, self.steps = real, EVENT_NAMES[event], self.steps + 1
        self.score += event in (Event.EAT, Event.WIN)
        self.done = bool(result.terminated)
        self.state = result.state
        self.analysis = None if self.done else self.analyse()
        return self.last

    def play(self, controller: str) -> Transition:
        return self.step(self.agent_action(controller))

    def as_dict(self) -> dict:
        """Everything the page shows, as JSON-ready data (the last output of every API endpoint)."""
        data = {"height": self.height, "width": self.width, "seed": self.seed, "steps": self.steps,
                "score": self.score, "event": self.event, "done": self.done, "board": self.board.tolist(),
                "last_step": None, "model": None}
        if self.last is not None:
            last = self.last
            data["last_step"] = {"action": ACTION_NAMES[last.action], "event": last.event,
                                 "predicted": last.predicted.tolist(), "real": last.real.tolist(),
                                 "match": last.match, "mismatched_cells": int(last.mismatch.sum())}
        if self.analysis is not None:
            a = self.analysis
            data["model"] = {
                "action": ACTION_NAMES[a.model_action],
                "action_probs": {name: float(p) for name, p in zip(ACTION_NAMES, a.action_probs)},
                "action_probs_calibrated": a.calibrated,  # False: the settled softmax, not a confidence
                "whatif": {name: {"board": a.whatif[i].tolist(), "death": bool(a.whatif_death[i])}
                           for i, name in enumerate(ACTION_NAMES)},
                "nag_steps": a.nag_steps, "grad_norm": a.grad_norm, "action_grad_norm": a.action_grad_norm,
                "seed_actions": [ACTION_NAMES[i] for i in a.seed_actions], "seed_disagreement": a.seed_disagreement,
                "decision_ms": 1000 * a.seconds,
            }
        return data


# What the dream mode compares, in the page's words.
DREAM_COMPARISON = ("**divergence** is counted on the whole board, food included (no correction), and again with the "
                    "food masked (\"the snake\"). With the dream's food drawn by the model, the boards part at the "
                    "first apple (both place new food at random); the snake count says whether the model still "
                    "follows the game. With the food copied from the real game (food-corrected), any difference is "
                    "the model's.")
DREAM_WORLD_LABELS = {"real": "the real board", "dream": "the dream board"}


class DreamSession:
    """Play inside the model beside the real game (`simulator.DreamBesideReal`): each move, a person's or an
    agent's, steps the real game with the rules and the dream with the model. An agent reads its move from the
    board `acts_on` names (the other world gets the same move); when that world has ended it reads the other."""

    def __init__(self, model, height: int | None = None, width: int | None = None, seed: int = 0,
                 food: str = "decoder", initial_length: int = 3) -> None:
        config = model.config
        height = int(config.board_height if height is None else height)
        width = int(config.board_width if width is None else width)
        if (height, width) not in supported_sizes(config):
            raise ValueError(f"board size {height}x{width} is not one this model supports: "
                             f"{', '.join(f'{h}x{w}' for h, w in supported_sizes(config)[:6])}")
        self.model, self.height, self.width, self.seed = model, height, width, int(seed)
        self.twin = DreamBesideReal(model, height, width, seed=self.seed, initial_length=initial_length, food=food)
        self.controller: str | None = None  # who made the last move ("you" or an agent's key)
        self.acted_on: str | None = None  # the board the last agent move was read from
        self._agents: dict = {}

    @property
    def done(self) -> bool:
        return self.twin.done

    def agent_action(self, controller: str, acts_on: str = "real") -> tuple[int, str]:
        """(the named agent's move, the world whose board it read)."""
        if self.done:
            raise ValueError("both games are over: start a new game")
        if controller not in CONTROLLERS or controller == "you":
            raise ValueError(f"controller must be one of {sorted(set(CONTROLLERS) - {'you'})}, got {controller!r}")
        world = self.twin.acting_world(acts_on)
        if controller not in self._agents:
            self._agents[controller] = make_agent(controller, self.model, seed=self.seed)
        return int(self._agents[controller].act_batch(self.twin.board(world)[None])[0]), world

    def step(self, action: int, controller: str = "you", acted_on: str | None = None):
        """Move both worlds with `action`; returns the divergence after it."""
        divergence = self.twin.step(action)
        self.controller, self.acted_on = controller, acted_on
        return divergence

    def play(self, controller: str, acts_on: str = "real"):
        action, world = self.agent_action(controller, acts_on)
        return self.step(action, controller, world)

    def resync(self) -> None:
        self.twin.resync()

    def as_dict(self) -> dict:
        """Both boards, how each world stands and the divergence, JSON-ready (the last output of the dream
        endpoints)."""
        return {**self.twin.as_dict(), "controller": self.controller, "acted_on": self.acted_on,
                "comparison": "whole board, food included; also with the food masked",
                "dream_food_label": DREAM_FOODS[self.twin.food]}


MAX_LINK_STEPS = 1000


def link_settings(query: dict, seed: int = 0, controller: str = "eqm") -> tuple[int, str, int]:
    """(seed, controller, steps to play) from a page link's query (`?seed=3&agent=planner&steps=20`)."""
    try:
        seed = int(query.get("seed", seed))
        steps = int(query.get("steps", 0))
    except ValueError:
        raise ValueError(f"seed and steps in the link must be integers, got {query}") from None
    controller = query.get("agent", controller)
    if controller not in CONTROLLERS:
        raise ValueError(f"agent in the link must be one of {', '.join(CONTROLLERS)}, got {controller!r}")
    if seed < 0 or not 0 <= steps <= MAX_LINK_STEPS:
        raise ValueError(f"the link needs seed >= 0 and steps in 0..{MAX_LINK_STEPS}, got {seed} and {steps}")
    return seed, controller, 0 if controller == "you" else steps


def dream_link_settings(query: dict) -> tuple[bool, str, str]:
    """(open the dream tab, dream food, board the agent acts on) from a link's query
    (`?mode=dream&food=real&on=dream`, with `seed`, `agent` and `steps` as for `link_settings`)."""
    mode, food, acts_on = query.get("mode", "real"), query.get("food", "decoder"), query.get("on", "real")
    if mode not in ("real", "dream"):
        raise ValueError(f"mode in the link must be real or dream, got {mode!r}")
    if food not in DREAM_FOODS:
        raise ValueError(f"food in the link must be one of {', '.join(DREAM_FOODS)}, got {food!r}")
    if acts_on not in WORLDS:
        raise ValueError(f"on in the link must be one of {', '.join(WORLDS)}, got {acts_on!r}")
    return mode == "dream", food, acts_on


# ----------------------------------------------------------------------------------------------------------
# Pictures: the game's renderer, with marks laid over it
# ----------------------------------------------------------------------------------------------------------


def cell_size_for(height: int, width: int, pixels: int = BOARD_PIXELS) -> int:
    return max(4, pixels // max(height, width))


def board_picture(board: np.ndarray, cell_size: int) -> np.ndarray:
    """The game's renderer; a predicted board it rejects as illegal is painted by cell code instead."""
    return render_rgb_any(board, cell_size)


def frame_cells(image: np.ndarray, mask: np.ndarray, cell_size: int, colour=MISMATCH_COLOUR) -> np.ndarray:
    """Draw a frame inside every cell where `mask` is true."""
    image = image.copy()
    width = max(1, cell_size // 8)
    for row, col in zip(*np.nonzero(mask)):
        top, left = row * cell_size, col * cell_size
        cell = image[top:top + cell_size, left:left + cell_size]
        cell[:width], cell[-width:], cell[:, :width], cell[:, -width:] = colour, colour, colour, colour
    return image


def death_picture(image: np.ndarray) -> np.ndarray:
    """Tint a (terminal) board red so a predicted death reads as one at a glance."""
    return (0.5 * image + 0.5 * np.array(DEATH_TINT)).astype(np.uint8)


def takes_prob_draws(model) -> bool:
    """Whether `model.sample` can return calibrated action probabilities (`prob_draws`)."""
    import inspect

    try:
        return "prob_draws" in inspect.signature(model.sample).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def shown_probabilities(session: GameSession) -> dict[str, float]:
    """The calibrated probabilities the page shows ({} when there are none: the softmax is never shown)."""
    a = session.analysis
    if a is None or not a.calibrated:
        return {}
    return {name: float(p) for name, p in zip(ACTION_NAMES, a.action_probs)}


def session_pictures(session: GameSession) -> tuple[np.ndarray, np.ndarray | None, list[tuple[np.ndarray, str]]]:
    """(real board, last prediction with mismatches framed or None, [(what-if picture, caption)] x 4)."""
    cell = cell_size_for(session.height, session.width)
    real = board_picture(session.board, cell)
    if session.done and session.event not in ("win",):
        real = death_picture(real)
    predicted = None
    if session.last is not None:
        predicted = board_picture(session.last.predicted, cell)
        if is_terminal(session.last.predicted[None])[0]:
            predicted = death_picture(predicted)
        predicted = frame_cells(predicted, session.last.mismatch, cell)
    whatifs = []
    if session.analysis is not None:
        a, small = session.analysis, cell_size_for(session.height, session.width, BOARD_PIXELS // 2)
        for i, name in enumerate(ACTION_NAMES):
            picture = board_picture(a.whatif[i], small)
            picture = death_picture(picture) if a.whatif_death[i] else picture
            chance = f": {a.action_probs[i]:.0%}" if a.calibrated else ""
            whatifs.append((picture, f"{name}{chance}{' · death' if a.whatif_death[i] else ''}"))
    return real, predicted, whatifs


def dream_pictures(session: DreamSession) -> tuple[np.ndarray, np.ndarray]:
    """(real board, dream board with the cells that differ from the real one framed); a world that ended in a
    death is tinted red. An illegal dream board is painted by cell code."""
    twin, cell = session.twin, cell_size_for(session.height, session.width)
    real = board_picture(twin.real, cell)
    if twin.real_done and twin.real_end != "win":
        real = death_picture(real)
    dream = board_picture(twin.dream, cell)
    if twin.dream_end == "death":
        dream = death_picture(dream)
    return real, frame_cells(dream, twin.divergence().mask, cell)


def dream_markdown(session: DreamSession) -> str:
    twin = session.twin
    d = twin.divergence()
    move = "" if twin.last_action is None else f" · last move **{ACTION_NAMES[twin.last_action]}**"
    if session.acted_on is not None:
        move += f" (the {CONTROLLERS[session.controller]} read {DREAM_WORLD_LABELS[session.acted_on]})"
    lines = [f"**dream step** {twin.steps} · **apples** real {twin.real_apples}, dream {twin.dream_apples}{move}"
             + (" · **both games over**" if twin.done else "")]
    verdict = ("**dream = real**" if d.equal else
               f"**dream ≠ real**: {d.cells} cell(s) differ, {d.snake_cells} with the food masked (framed in yellow)")
    first = "never" if d.first_step is None else f"step {d.first_step}"
    first_snake = "never" if d.first_snake_step is None else f"step {d.first_snake_step}"
    since = f" since the resync at step {twin.synced_at}" if twin.resyncs else ""
    lines.append(f"{verdict} · first differed{since}: {first} (the snake: {first_snake})")
    lines.append(f"dream food: {DREAM_FOODS[twin.food]} · comparison: whole board, food included")
    real_state = f"ended: **{twin.real_end}**" if twin.real_done else f"last event {twin.real_event}"
    if not twin.dream_done:
        dream_state = f"last event {twin.dream_event}"
    elif twin.dream_end.startswith("illegal"):
        dream_state = (f"ended: **{twin.dream_end}** (the model predicted a board that is not a legal one; "
                       "resync to go on from the real board)")
    else:
        dream_state = f"ended: **{twin.dream_end}**"
    lines.append(f"real game: {real_state} · dream: {dream_state}")
    return "\n\n".join(lines)


def session_markdown(session: GameSession) -> str:
    lines = [f"**score** {session.score} · **steps** {session.steps} · **last event** {session.event}"
             + (" · **game over**" if session.done else "")]
    if session.last is not None:
        last = session.last
        verdict = ("prediction matched the real board" if last.match else
                   f"**MISMATCH**: {int(last.mismatch.sum())} cell(s) wrong (framed in yellow)")
        lines.append(f"last move **{ACTION_NAMES[last.action]}** → {verdict}")
    if session.analysis is not None:
        a = session.analysis
        lines.append(f"model's move **{ACTION_NAMES[a.model_action]}** · NAG steps {a.nag_steps} · "
                     f"gradient norm {a.grad_norm:.3f} (action block {a.action_grad_norm:.3f}) · "
                     f"seed disagreement {a.seed_disagreement:.2f} "
                     f"({', '.join(ACTION_NAMES[i] for i in a.seed_actions)}) · {1000 * a.seconds:.0f} ms")
    return "\n\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# The Gradio page
# ----------------------------------------------------------------------------------------------------------

# Arrow keys press the move buttons of the tab on show (ignored while typing in a field).
KEYBOARD_JS = """
<script>
document.addEventListener("keydown", (event) => {
  const ids = {ArrowUp: "move-up", ArrowRight: "move-right", ArrowDown: "move-down", ArrowLeft: "move-left"};
  const target = document.activeElement;
  if (!(event.key in ids) || (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  // The arrows of the tab on show: the real game's, or the dream's ("dream-move-...").
  const button = [ids[event.key], "dream-" + ids[event.key]].map(id => document.getElementById(id))
    .find(candidate => candidate && candidate.offsetParent !== null);
  if (button) { event.preventDefault(); button.click(); }
});
</script>
"""


def import_gradio():
    try:
        import gradio
    except ImportError:
        raise SystemExit(MISSING_GRADIO) from None
    return gradio


def _size_label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def build_app(model, title: str = "Snake world model (EqM)"):
    """The Blocks page; its events are also API endpoints (`/new_game`, `/step`, `/move_up`, ...) whose last
    output is the session as JSON (`GameSession.as_dict`). The second tab is the dream mode: `/dream_new_game`,
    `/dream_step`, `/dream_move_up`, ..., `/dream_resync`, whose last output is `DreamSession.as_dict`."""
    gr = import_gradio()
    cache_folder = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
    sizes = [_size_label(size) for size in supported_sizes(model.config)]
    own = _size_label((model.config.board_height, model.config.board_width))

    def view(session: GameSession) -> tuple:
        real, predicted, whatifs = session_pictures(session)
        last = session.last
        verdict = "" if last is None else (" · matched" if last.match else f" · MISMATCH ({int(last.mismatch.sum())} cells)")
        cap_cache(cache_folder)
        whatif_updates = [gr.Image(value=picture, label=f"what if {caption}") for picture, caption in whatifs]
        whatif_updates += [gr.Image(value=None, label="what if: game over")] * (4 - len(whatifs))
        return (session, real, gr.Image(value=predicted, label=f"predicted one step ago{verdict}"), *whatif_updates,
                shown_probabilities(session), session_markdown(session), session.as_dict())

    def dream_view(session: DreamSession) -> tuple:
        real, dream = dream_pictures(session)
        twin = session.twin
        cap_cache(cache_folder)
        real_label = "real game (the rules)" + (f" · ended: {twin.real_end}" if twin.real_done else "")
        differ = "" if twin.divergence().equal else f" · {twin.divergence().cells} cell(s) differ"
        dream_label = ("dream (the model's own predictions)" + differ
                       + (f" · ended: {twin.dream_end}" if twin.dream_done else ""))
        return (session, gr.Image(value=real, label=real_label), gr.Image(value=dream, label=dream_label),
                dream_markdown(session), session.as_dict())

    def parse_size(size: str) -> tuple[int, int]:
        height, width = (int(part) for part in str(size).lower().split("x"))
        return height, width

    def start(size: str, seed, controller: str) -> GameSession:
        try:
            return GameSession(model, *parse_size(size), seed=int(seed))
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def start_dream(size: str, seed, food: str) -> DreamSession:
        try:
            return DreamSession(model, *parse_size(size), seed=int(seed), food=food)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def new_game(size: str, seed, controller: str):
        return view(start(size, seed, controller))

    def open_link(size: str, seed, controller: str, request: gr.Request):
        # A link may open a game in progress: ?seed=3&agent=planner&steps=20; &mode=dream (with &food=real,
        # &on=dream) plays those steps in the dream tab and opens it.
        try:
            query = dict(request.query_params)
            seed, controller, moves = link_settings(query, int(seed), controller)
            dream, food, acts_on = dream_link_settings(query)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        session = start(size, seed, controller)
        dream_session = start_dream(size, seed, food)
        while moves > 0 and not (dream_session.done if dream else session.done):
            if dream:
                dream_session.play(controller, acts_on)
            else:
                session.play(controller)
            moves -= 1
        return (*view(session), seed, controller, gr.Tabs(selected="dream" if dream else "real"),
                *dream_view(dream_session), seed, controller, food, acts_on)

    def _check_in_progress(session) -> None:
        if session is None or session.done:
            raise gr.Error("no game in progress: press New game")

    def _check_agent_turn(controller: str) -> None:
        if controller == "you":
            raise gr.Error("you are playing: use the arrow buttons (or pick an agent)")

    def agent_step(session: GameSession | None, controller: str):
        _check_in_progress(session)
        _check_agent_turn(controller)
        session.play(controller)
        return view(session)

    def move(session: GameSession | None, action: int):
        _check_in_progress(session)
        session.step(action)
        return view(session)

    def dream_new_game(size: str, seed, food: str):
        return dream_view(start_dream(size, seed, food))

    def dream_agent_step(session: DreamSession | None, controller: str, acts_on: str):
        _check_in_progress(session)
        _check_agent_turn(controller)
        try:
            session.play(controller, acts_on)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        return dream_view(session)

    def dream_move(session: DreamSession | None, action: int):
        _check_in_progress(session)
        session.step(action)
        return dream_view(session)

    def dream_resync(session: DreamSession | None):
        if session is None:
            raise gr.Error("no game in progress: press New game")
        try:
            session.resync()
        except ValueError as error:
            raise gr.Error(str(error)) from None
        return dream_view(session)

    with gr.Blocks(title=title, delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(f"# {title}\n" + LEGEND)
        picture = {"type": "numpy", "interactive": False, "buttons": []}
        with gr.Tabs(selected="real") as tabs:
            with gr.Tab("Real game and the model's view", id="real"):
                gr.Markdown("The real board beside the board the model predicted for it one step earlier, the "
                            "model's four what-if successors of the current board, and where it hesitates.")
                session_state = gr.State(None, time_to_live=3600)
                with gr.Row():
                    size = gr.Dropdown(sizes, value=own, label="board size", interactive=len(sizes) > 1)
                    seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    controller = gr.Radio(choices=[(label, key) for key, label in CONTROLLERS.items()],
                                          value="eqm", label="who plays")
                    new_game_button = gr.Button("New game", variant="primary")
                with gr.Row():
                    step_button = gr.Button("Step")
                    play_button = gr.Button("Play")
                    pause_button = gr.Button("Pause")
                    speed = gr.Slider(0.5, 10, value=2, step=0.5, label="speed (steps per second)")
                with gr.Row():
                    arrows = {name: gr.Button(f"{glyph} {name}", elem_id=f"move-{name}")
                              for name, glyph in zip(ACTION_NAMES, "↑→↓←")}
                with gr.Row():
                    real = gr.Image(label="real board", height=BOARD_PIXELS + 40, **picture)
                    predicted = gr.Image(label="predicted one step ago", height=BOARD_PIXELS + 40, **picture)
                    with gr.Column():
                        calibrated = takes_prob_draws(model)
                        probs = gr.Label(label=PROBABILITIES_LABEL, num_top_classes=4, visible=calibrated)
                        gr.Markdown(PROBABILITIES_HIDDEN, visible=not calibrated)
                        info = gr.Markdown()
                with gr.Row():
                    whatifs = [gr.Image(label=f"what if {name}", height=BOARD_PIXELS // 2 + 40, **picture)
                               for name in ACTION_NAMES]
                with gr.Accordion("boards as data (JSON)", open=False):
                    data = gr.JSON(label="session")
                timer = gr.Timer(0.5, active=False)
            with gr.Tab("Play inside the model (dream)", id="dream"):
                gr.Markdown("**Play inside the model.** The real game and the model's dream of it start from the "
                            "same board; every move (yours, or an agent's) steps the real game with the rules and "
                            "the dream with the model alone: the dream's next board is the model's prediction from "
                            "its own previous one, never from the real board (until you resync it).\n\n"
                            + DREAM_COMPARISON)
                dream_state = gr.State(None, time_to_live=3600)
                with gr.Row():
                    dream_size = gr.Dropdown(sizes, value=own, label="board size", interactive=len(sizes) > 1)
                    dream_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    dream_food = gr.Radio(choices=[(label, key) for key, label in DREAM_FOODS.items()],
                                          value="decoder", label="the dream's new food")
                    dream_new_game_button = gr.Button("New game", variant="primary", elem_id="dream-new-game")
                with gr.Row():
                    dream_controller = gr.Radio(choices=[(label, key) for key, label in CONTROLLERS.items()],
                                                value="eqm", label="who plays")
                    acts_on = gr.Radio(choices=[(label, key) for key, label in DREAM_WORLD_LABELS.items()],
                                       value="real", label="the agent reads")
                    resync_button = gr.Button("Resync dream to real", elem_id="dream-resync")
                with gr.Row():
                    dream_step_button = gr.Button("Step", elem_id="dream-step")
                    dream_play_button = gr.Button("Play", elem_id="dream-play")
                    dream_pause_button = gr.Button("Pause", elem_id="dream-pause")
                    dream_speed = gr.Slider(0.5, 10, value=2, step=0.5, label="speed (steps per second)")
                with gr.Row():
                    dream_arrows = {name: gr.Button(f"{glyph} {name}", elem_id=f"dream-move-{name}")
                                    for name, glyph in zip(ACTION_NAMES, "↑→↓←")}
                with gr.Row():
                    dream_real = gr.Image(label="real game (the rules)", height=BOARD_PIXELS + 40, **picture)
                    dream_board = gr.Image(label="dream (the model's own predictions)", height=BOARD_PIXELS + 40,
                                           **picture)
                    dream_info = gr.Markdown()
                with gr.Accordion("boards as data (JSON)", open=False):
                    dream_data = gr.JSON(label="dream session")
                dream_timer = gr.Timer(0.5, active=False)

        outputs = [session_state, real, predicted, *whatifs, probs, info, data]
        dream_outputs = [dream_state, dream_real, dream_board, dream_info, dream_data]

        def tick(session: GameSession | None, controller: str):
            # The auto-play clock: steps the agent and stops itself when the game ends or a person plays.
            if session is None or session.done or controller == "you":
                return (gr.Timer(active=False), *(gr.skip() for _ in outputs))
            session.play(controller)
            # Only ever switch the clock off here: switching it on would undo a Pause pressed meanwhile.
            return (gr.Timer(active=False) if session.done else gr.skip(), *view(session))

        def dream_tick(session: DreamSession | None, controller: str, acts_on: str):
            if session is None or session.done or controller == "you":
                return (gr.Timer(active=False), *(gr.skip() for _ in dream_outputs))
            session.play(controller, acts_on)
            return (gr.Timer(active=False) if session.done else gr.skip(), *dream_view(session))

        new_game_button.click(new_game, [size, seed, controller], outputs, api_name="new_game")
        demo.load(open_link, [size, seed, controller],
                  [*outputs, seed, controller, tabs, *dream_outputs, dream_seed, dream_controller, dream_food,
                   acts_on], api_visibility="private")
        step_button.click(agent_step, [session_state, controller], outputs, api_name="step")
        for index, name in enumerate(ACTION_NAMES):
            # "multiple": a key pressed while the last move is still drawing is queued, not dropped.
            arrows[name].click(lambda session, a=index: move(session, a), [session_state], outputs,
                               api_name=f"move_{name}", trigger_mode="multiple")
        play_button.click(lambda: gr.Timer(active=True), None, timer, api_visibility="private")
        pause_button.click(lambda: gr.Timer(active=False), None, timer, api_visibility="private")
        speed.change(lambda s: gr.Timer(value=1.0 / s), speed, timer, api_visibility="private")
        timer.tick(tick, [session_state, controller], [timer, *outputs], api_visibility="private")

        dream_new_game_button.click(dream_new_game, [dream_size, dream_seed, dream_food], dream_outputs,
                                    api_name="dream_new_game")
        dream_step_button.click(dream_agent_step, [dream_state, dream_controller, acts_on], dream_outputs,
                                api_name="dream_step")
        for index, name in enumerate(ACTION_NAMES):
            dream_arrows[name].click(lambda session, a=index: dream_move(session, a), [dream_state], dream_outputs,
                                     api_name=f"dream_move_{name}", trigger_mode="multiple")
        resync_button.click(dream_resync, [dream_state], dream_outputs, api_name="dream_resync")
        dream_play_button.click(lambda: gr.Timer(active=True), None, dream_timer, api_visibility="private")
        dream_pause_button.click(lambda: gr.Timer(active=False), None, dream_timer, api_visibility="private")
        dream_speed.change(lambda s: gr.Timer(value=1.0 / s), dream_speed, dream_timer, api_visibility="private")
        dream_timer.tick(dream_tick, [dream_state, dream_controller, acts_on], [dream_timer, *dream_outputs],
                         api_visibility="private")
    return demo


def load_model(path_or_repo: str | Path | None = None):
    """The world model to show: `path_or_repo`, else the checkpoint shipped with the package (on CPU, in
    eval mode, through `pretrained.load_model`)."""
    return load_pretrained(path_or_repo or PRETRAINED_10X10, kind="eqm")


def cap_cache(folder: str | Path, max_files: int = CACHE_MAX_FILES) -> int:
    """Delete the oldest files of the app's temporary folder beyond `max_files`; the number deleted."""
    try:
        files = [path for path in Path(folder).rglob("*") if path.is_file()]
    except OSError:
        return 0
    if len(files) <= max_files:
        return 0
    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0
    removed = 0
    for path in sorted(files, key=age)[: len(files) - max_files]:
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


class RefuseUploads:
    """ASGI middleware: this page has no file input, so every upload (and any multipart body) is refused with
    403 before gradio stores it; a public Space must not become a free file host."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and _is_upload(scope):
            body = b"this app takes no file uploads"
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _is_upload(scope) -> bool:
    path = scope.get("path", "").rstrip("/")
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
    return path.endswith("/upload") or content_type.lower().startswith(b"multipart/")


# gradio's queue polls for work every 1 ms (and for progress every 10 ms) even with no browser connected:
# 2.8 s of CPU a minute on an idle server here. Polling every 100 ms (500 ms for progress, which this app
# never reports) costs at most 100 ms of latency per move; 50 ms measured 0.37-0.44 s a minute, too close to
# the 0.5 s budget (benchmarks/app_idle_cpu.py measures it; docs/results/app_idle_cpu.json).
QUEUE_POLL_SECONDS = 0.1
PROGRESS_POLL_SECONDS = 0.5


def quiet_when_idle(demo) -> None:
    """Slow gradio's idle polling loops (see QUEUE_POLL_SECONDS); a gradio without them is left alone."""
    queue = getattr(demo, "_queue", None)
    if queue is None:
        return
    if hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_POLL_SECONDS)
    if hasattr(queue, "progress_update_sleep_when_free"):
        queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, PROGRESS_POLL_SECONDS)


def launch(model, host: str | None = None, port: int | None = None, block: bool = True):
    """Start the page; `block=False` returns the running Blocks (tests, screenshots): call `.close()`.

    Its temporary images go to a folder of its own (unless GRADIO_TEMP_DIR names one), capped and swept."""
    from starlette.middleware import Middleware

    own_cache = "GRADIO_TEMP_DIR" not in os.environ
    if own_cache:  # gradio components read the folder when they are built, the server when it starts
        os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="snake-eqm-app-")
    try:
        demo = build_app(model)
        demo.queue(default_concurrency_limit=1)  # one CPU thread: decisions run one at a time
        quiet_when_idle(demo)
        demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
                    head=KEYBOARD_JS, footer_links=["api"], max_file_size=0,
                    app_kwargs={"middleware": [Middleware(RefuseUploads)]})
    finally:
        if own_cache:
            os.environ.pop("GRADIO_TEMP_DIR", None)
    return demo


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    import_gradio()  # fail with the install hint before loading anything
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # trained weights give subnormal floats that slow CPU convolutions
    try:
        model = load_model(args.model)
    except ValueError as error:  # PretrainedLoadError: a missing folder, an unknown repo, a config not ours
        raise SystemExit(f"snake-eqm app: cannot load the model {args.model!r}: {error}") from None
    launch(model, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
