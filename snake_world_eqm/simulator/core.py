"""One dream transition for a batch of boards: the model's held-action sample, read as a game step.

Reward and termination are read from the predicted board only (the rules engine is never asked):
the all-EMPTY board is a death (-1, terminated); a snake one cell longer than before ate (+1); a full
board with no food is a win (+1, terminated); a board that is not a legal board (two heads, a broken
body, no food or two foods on a non-full board) ends the episode with reason ``illegal:<what>`` and
reward 0 — never an exception.

New food is whatever the model draws (``food="model"``: the argmax of the decoder). ``food="decoder"`` is a
sampling-side option for the one stochastic part of a transition: where the predicted snake grew, the new
food cell is drawn from the model's food belief over the cells it leaves empty (its food head where it has
one, else the decoder's per-cell FOOD probabilities; every other food cell is cleared), so each eating draw
holds exactly one food on an empty cell;
``food_temperature`` > 1 flattens those probabilities (``inf``: uniform over the cells the model leaves empty,
the rules' prior rather than the model's belief). ``food_from`` gives the new food instead where it can: the
real game's next boards, whose food cell is copied onto each prediction whose snake grew (*food-corrected*, as in
the open-loop measurements: where new food appears is random, and no model can guess it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from snake_world_eqm.agents.base import model_device, sample_model
from snake_world_eqm.game.batched import legal_boards
from snake_world_eqm.game.encoding import EMPTY, FOOD, HEAD_ALONE, HEAD_LEFT
from snake_world_eqm.game.state import REWARD_DEATH, REWARD_EAT

FOOD_MODES = ("model", "decoder")
END_REASONS = ("death", "win", "illegal:heads", "illegal:no_food", "illegal:foods", "illegal:body")


@dataclass
class DreamStep:
    """What one batched dream step gives back (all numpy, length B)."""

    boards: np.ndarray  # (B, H, W) int8 predicted next boards (illegal ones kept as predicted)
    reward: np.ndarray  # (B,) float32
    terminated: np.ndarray  # (B,) bool
    event: np.ndarray  # (B,) object: "none" | "eat" | "death" | "win" | "illegal"
    reason: np.ndarray  # (B,) object: "" while the game goes on, else one of END_REASONS
    length: np.ndarray  # (B,) snake cells on the predicted board


def illegal_reasons(boards: np.ndarray) -> np.ndarray:
    """(B,) object: "" for a legal (or terminal) board, else "illegal:heads|no_food|foods|body"."""
    boards = np.asarray(boards)
    cells = boards.shape[1] * boards.shape[2]
    legal = legal_boards(boards.astype(np.int8))
    heads = ((boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)).sum(axis=(1, 2))
    foods = (boards == FOOD).sum(axis=(1, 2))
    length = (boards >= HEAD_ALONE).sum(axis=(1, 2))
    reasons = np.full(len(boards), "", dtype=object)
    reasons[~legal] = "illegal:body"
    reasons[~legal & (foods > 1)] = "illegal:foods"
    reasons[~legal & (foods == 0) & (length < cells)] = "illegal:no_food"
    reasons[~legal & (heads != 1)] = "illegal:heads"
    return reasons


def draw_food_from_decoder(logits: torch.Tensor, boards: np.ndarray, rows: np.ndarray,
                           generator: torch.Generator | None = None, temperature: float = 1.0) -> np.ndarray:
    """Redraw the food of `boards[rows]` from the model's food belief over the cells it leaves empty.

    `logits`: (B, H, W) log-weights of new food per cell (`SnakeWorldEqM.food_log_weights`: the food head's,
    or the decoder's log p(FOOD)), or the decoder's (B, H, W, 12) per-cell logits, for all boards; returns a
    copy of `boards`. Cell c is drawn with weight w(c) ** (1 / temperature): 1 is the model's own belief, larger
    values flatten it toward uniform over the free cells (infinity is exactly uniform). A row with no empty or
    food cell left (a full board) is left as it is.
    """
    boards = np.array(boards, copy=True)
    if len(rows) == 0:
        return boards
    picked = logits[torch.as_tensor(rows, device=logits.device)].float()
    log_probs = torch.log_softmax(picked, dim=-1)[..., FOOD] if picked.dim() == 4 else picked
    if math.isinf(temperature):
        probs = torch.ones_like(log_probs)
    else:
        probs = torch.exp((log_probs - log_probs.flatten(1).max(1).values[:, None, None]) / temperature)
    free = torch.as_tensor((boards[rows] == EMPTY) | (boards[rows] == FOOD), device=logits.device)
    weights = (probs * free).flatten(1)
    has_room = free.flatten(1).any(dim=1)
    # A row whose FOOD probabilities all underflow on the free cells falls back to uniform over them.
    weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, free.flatten(1).to(weights))
    sub = boards[rows]
    sub[sub == FOOD] = EMPTY
    if has_room.any():
        picks = torch.multinomial(weights[has_room], 1, generator=generator).squeeze(1).cpu().numpy()
        flat = sub.reshape(len(rows), -1)
        flat[np.flatnonzero(has_room.cpu().numpy()), picks] = FOOD
    boards[rows] = sub
    return boards


def copy_food(boards: np.ndarray, rows: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Put the food of `sources[rows]` onto `boards[rows]` (a copy of `boards` is returned).

    A row takes the source's food only where the source holds exactly one food cell and that cell is empty (or
    food) on the board; then every other food cell of the row is cleared. Other rows are left as they are.
    """
    boards = np.array(boards, copy=True)
    sources = np.asarray(sources)
    for row in np.asarray(rows, dtype=np.int64).reshape(-1):
        cells = np.argwhere(sources[row] == FOOD)
        if len(cells) != 1 or boards[row][tuple(cells[0])] not in (EMPTY, FOOD):
            continue
        boards[row][boards[row] == FOOD] = EMPTY
        boards[row][tuple(cells[0])] = FOOD
    return boards


def check_model_size(model, height: int, width: int) -> None:
    """ValueError when `model` is fixed to another board size than `height` x `width`."""
    config = getattr(model, "config", None)
    if getattr(config, "fixed_board_size", False) and (config.board_height, config.board_width) != (height, width):
        raise ValueError(f"the model is fixed to {config.board_height}x{config.board_width} boards; "
                         f"got height={height}, width={width}")


def voted_sample(model, boards: np.ndarray, actions: np.ndarray, generator: torch.Generator | None = None,
                 init_scale: float = 1.0, num_steps: int | None = None, votes: int = 1):
    """`votes` held-action draws per board; keep, per board, the first draw whose food-masked board is the most
    common one among its draws (the snake by majority; its food as that draw put it). Returns
    (predicted (B, H, W) int8, latent_next (B, latent_dim) of the kept draws).

    A sampling-side remedy for the one error that dominates long games: on an eating step of a long snake
    some draws from noise miss the growth (the tail moves on) while most draws get it right.
    """
    if votes < 1:
        raise ValueError(f"votes must be >= 1, got {votes}")
    batch = len(boards)
    if votes > 1:
        boards = np.repeat(boards, votes, axis=0)
        actions = np.repeat(actions, votes)
    out = sample_model(model, boards, generator=generator, action=actions, init_scale=init_scale,
                       num_steps=num_steps)
    predicted = out.next_board.detach().cpu().numpy().astype(np.int8)
    if votes == 1:
        return predicted, out.latent_next
    draws = predicted.reshape(batch, votes, *predicted.shape[1:])
    masked = np.where(draws == FOOD, EMPTY, draws).reshape(batch, votes, -1)
    keep = np.zeros(batch, dtype=np.int64)
    for row in range(batch):
        _, first, inverse, counts = np.unique(masked[row], axis=0, return_index=True, return_inverse=True,
                                              return_counts=True)
        keep[row] = first[counts == counts.max()].min()  # a tie goes to the board drawn first
    chosen = np.arange(batch) * votes + keep
    return predicted[chosen], out.latent_next[torch.as_tensor(chosen, device=out.latent_next.device)]


def dream_step(model, boards: np.ndarray, actions: np.ndarray, generator: torch.Generator | None = None,
               init_scale: float = 1.0, food: str = "model", num_steps: int | None = None,
               food_temperature: float = 1.0, votes: int = 1, food_from: np.ndarray | None = None) -> DreamStep:
    """Step every board inside the model with its held action: `model.sample(boards, action=actions)`.

    `boards` (B, H, W) must be legal non-terminal boards (the caller ends a game at a terminal or illegal
    one); the result's boards are the decoded predictions as they are, except for `food="decoder"`.
    `votes` > 1 draws that many successors per board and keeps the majority snake (:func:`voted_sample`).
    `food_from` (B, H, W), optional: where the predicted snake grew, the new food is copied from these boards
    (:func:`copy_food`; the real game's next boards make the dream food-corrected); a row whose source food
    cell is taken on the prediction keeps the drawn food.
    """
    if food not in FOOD_MODES:
        raise ValueError(f"food must be one of {FOOD_MODES}, got {food!r}")
    boards = np.asarray(boards)
    actions = np.asarray(actions, dtype=np.int64).reshape(len(boards))
    predicted, latent = voted_sample(model, boards, actions, generator, init_scale, num_steps, votes)
    before = (boards >= HEAD_ALONE).sum(axis=(1, 2))
    after = (predicted >= HEAD_ALONE).sum(axis=(1, 2))
    if food == "decoder":
        grew = np.flatnonzero(after > before)
        if grew.size:
            current = torch.as_tensor(boards, dtype=torch.long, device=model_device(model))
            with torch.no_grad():
                if hasattr(model, "food_log_weights"):
                    logits = model.food_log_weights(latent, current)
                else:  # a stand-in with a decoder only
                    logits = model.from_latent(latent, current)
            predicted = draw_food_from_decoder(logits, predicted, grew, generator, food_temperature)
    if food_from is not None:
        food_from = np.asarray(food_from)
        if food_from.shape != boards.shape:
            raise ValueError(f"food_from must have the boards' shape {boards.shape}, got {food_from.shape}")
        predicted = copy_food(predicted, np.flatnonzero(after > before), food_from)
    cells = boards.shape[1] * boards.shape[2]
    reasons = illegal_reasons(predicted)
    illegal = reasons != ""
    death = after == 0
    win = ~illegal & ~death & (after == cells)
    eat = ~illegal & ~death & (after > before)
    reward = np.zeros(len(boards), dtype=np.float32)
    reward[eat] = REWARD_EAT
    reward[death] = REWARD_DEATH
    event = np.full(len(boards), "none", dtype=object)
    event[eat] = "eat"
    event[win] = "win"
    event[death] = "death"
    event[illegal] = "illegal"
    reasons[death] = "death"
    reasons[win] = "win"
    return DreamStep(predicted, reward, illegal | death | win, event, reasons, after)
