"""Play inside the model beside the real game: one action stream, two worlds, and where they part.

`DreamBesideReal` keeps a real game (the rules, `game.rules.step`) and a dream board (the model,
:func:`~snake_world_eqm.simulator.core.dream_step`) that start from the same board. Every `step(action)` moves
both with the same action; a world that has ended stays as it ended while the other goes on. `divergence()`
compares the two boards cell by cell, food included, and with food masked ("the snake"); the first step (since
the last `resync`) where they differed is kept for each. `resync()` puts the real board into the dream, so the
model starts again from the truth.

The dream's new food (`food`):

- ``"decoder"`` (default): drawn from the model's decoder (``food="decoder"`` of the dream env). The real game
  places its food at random too, so the whole boards part at the first apple; the snake count tells whether
  the model still follows the game.
- ``"real"``: food-corrected: where the dream's snake grows, its new food is copied from the real game's next
  board (`copy_food`), so the whole boards stay equal for as long as the model is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from snake_world_eqm.agents.base import model_device
from snake_world_eqm.game.encoding import encode_observation, is_terminal_observation, mask_food
from snake_world_eqm.game.rules import new_game, step
from snake_world_eqm.game.state import ACTION_NAMES, EVENT_NAMES, NUM_ACTIONS, Event, check_board_size
from snake_world_eqm.simulator.core import check_model_size, dream_step

DREAM_FOODS = {
    "decoder": "drawn by the model (its food head, else its decoder's food probabilities)",
    "real": "copied from the real game (food-corrected)",
}
WORLDS = ("real", "dream")


@dataclass(frozen=True)
class Divergence:
    """The dream board against the real one after the same actions."""

    equal: bool  # identical, cell for cell, food included
    cells: int  # cells that differ, food included
    snake_cells: int  # cells that differ with the food masked on both boards
    mask: np.ndarray  # (H, W) bool: the differing cells (food included)
    first_step: int | None  # the first step since the last resync where the boards differed
    first_snake_step: int | None  # the same with the food masked


class DreamBesideReal:
    """A real game and the model's dream of it, moved by the same actions (0 up, 1 right, 2 down, 3 left).

    The real game's food comes from ``np.random.default_rng(seed)`` (as `snake-eqm play` and the app), the
    model's noise from a ``torch.Generator`` seeded with `seed`: a seed and an action list replay exactly.
    `init_scale`, `food_temperature`, `votes` and `num_steps` are the dream env's options.
    """

    def __init__(self, model, height: int, width: int, seed: int = 0, initial_length: int = 3,
                 food: str = "decoder", init_scale: float = 0.0, food_temperature: float = 1.0, votes: int = 1,
                 num_steps: int | None = None) -> None:
        check_board_size(height, width)
        if food not in DREAM_FOODS:
            raise ValueError(f"dream food must be one of {', '.join(DREAM_FOODS)}, got {food!r}")
        check_model_size(model, height, width)
        self.model, self.height, self.width, self.seed = model, int(height), int(width), int(seed)
        self.food, self.init_scale, self.food_temperature = food, float(init_scale), float(food_temperature)
        self.votes, self.num_steps = int(votes), num_steps
        self.state = new_game(height, width, rng=self.seed, initial_length=initial_length)
        self.rng = np.random.default_rng(self.seed)
        self.generator = torch.Generator(device=model_device(model)).manual_seed(self.seed)
        self.real = encode_observation(self.state)
        self.dream = self.real.copy()
        self.steps = 0
        self.real_event = self.dream_event = "start"
        self.real_end = self.dream_end = ""  # why a world ended: wall/self/reverse/win; death/win/illegal:<what>
        self.real_apples = self.dream_apples = 0
        self.last_action: int | None = None
        self.resyncs, self.synced_at = 0, 0
        self.first_diverged: int | None = None
        self.first_snake_diverged: int | None = None

    @property
    def real_done(self) -> bool:
        return self.real_end != ""

    @property
    def dream_done(self) -> bool:
        return self.dream_end != ""

    @property
    def done(self) -> bool:
        return self.real_done and self.dream_done

    def acting_world(self, prefer: str = "real") -> str:
        """The world an agent reads its board from: `prefer` while it goes on, else the other one."""
        if prefer not in WORLDS:
            raise ValueError(f"the agent acts on one of {', '.join(WORLDS)}, got {prefer!r}")
        other = WORLDS[1 - WORLDS.index(prefer)]
        return other if self.ended(prefer) and not self.ended(other) else prefer

    def ended(self, world: str) -> bool:
        return self.real_done if world == "real" else self.dream_done

    def board(self, world: str) -> np.ndarray:
        if world not in WORLDS:
            raise ValueError(f"world must be one of {', '.join(WORLDS)}, got {world!r}")
        return self.real if world == "real" else self.dream

    def step(self, action: int) -> Divergence:
        """Move both worlds that still go on with `action`; returns the divergence after the move."""
        if self.done:
            raise ValueError("both games are over: start a new game (or resync the dream to a real game in progress)")
        if isinstance(action, bool) or not isinstance(action, (int, np.integer)) or not 0 <= action < NUM_ACTIONS:
            raise ValueError(f"action must be an int in 0..3 ({', '.join(ACTION_NAMES)}), got {action!r}")
        action = int(action)
        if not self.real_done:
            result = step(self.state, action, self.rng)
            event = Event(int(result.event))
            self.real, self.state = np.asarray(result.observation), result.state
            self.real_event = EVENT_NAMES[event]
            self.real_apples += event in (Event.EAT, Event.WIN)
            if result.terminated:
                self.real_end = self.real_event
        if not self.dream_done:
            food_from = None if self.food != "real" or self.real_done else self.real[None]
            dreamt = dream_step(self.model, self.dream[None], np.array([action]), self.generator, self.init_scale,
                                "decoder", self.num_steps, self.food_temperature, self.votes, food_from=food_from)
            self.dream = dreamt.boards[0]
            self.dream_event = str(dreamt.event[0])
            self.dream_apples += self.dream_event in ("eat", "win")
            self.dream_end = str(dreamt.reason[0])
        self.steps += 1
        self.last_action = action
        divergence = self.divergence()
        if not divergence.equal and self.first_diverged is None:
            self.first_diverged = self.steps
        if divergence.snake_cells and self.first_snake_diverged is None:
            self.first_snake_diverged = self.steps
        return self.divergence()

    def resync(self) -> None:
        """Put the real board into the dream: the model goes on from the truth (the real game must go on)."""
        if self.real_done:
            raise ValueError("the real game is over: there is nothing to resync the dream to")
        self.dream = self.real.copy()
        self.dream_event, self.dream_end = "resync", ""
        self.resyncs, self.synced_at = self.resyncs + 1, self.steps
        self.first_diverged = self.first_snake_diverged = None

    def divergence(self) -> Divergence:
        mask = self.dream != self.real
        snake = mask_food(self.dream[None])[0] != mask_food(self.real[None])[0]
        return Divergence(not mask.any(), int(mask.sum()), int(snake.sum()), mask, self.first_diverged,
                          self.first_snake_diverged)

    def as_dict(self) -> dict:
        """JSON-ready: both boards, how each world stands, and the divergence."""
        divergence = self.divergence()
        return {
            "height": self.height, "width": self.width, "seed": self.seed, "steps": self.steps,
            "dream_food": self.food,
            "last_action": None if self.last_action is None else ACTION_NAMES[self.last_action],
            "real": {"board": self.real.tolist(), "event": self.real_event, "end": self.real_end,
                     "done": self.real_done, "apples": self.real_apples,
                     "terminal": bool(is_terminal_observation(self.real))},
            "dream": {"board": self.dream.tolist(), "event": self.dream_event, "end": self.dream_end,
                      "done": self.dream_done, "apples": self.dream_apples,
                      "legal": not self.dream_end.startswith("illegal")},
            "divergence": {"equal": divergence.equal, "cells": divergence.cells,
                           "snake_cells": divergence.snake_cells, "first_step": divergence.first_step,
                           "first_snake_step": divergence.first_snake_step,
                           "resyncs": self.resyncs, "synced_at": self.synced_at},
        }

    def divergence_line(self) -> str:
        """The divergence in one line of words (the terminal's and the page's)."""
        d = self.divergence()
        parts = ["dream = real" if d.equal else f"dream != real: {d.cells} cell(s) differ ({d.snake_cells} "
                 "with food masked)"]
        if d.first_step is not None:
            parts.append(f"first differed at step {d.first_step}"
                         + (f", the snake at step {d.first_snake_step}" if d.first_snake_step is not None else
                            ", the snake never"))
        if self.resyncs:
            parts.append(f"resynced {self.resyncs}x, last at step {self.synced_at}")
        if self.dream_end:
            parts.append(f"dream ended: {self.dream_end}")
        if self.real_end:
            parts.append(f"real game ended: {self.real_end}")
        return " | ".join(parts)
