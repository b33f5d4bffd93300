"""Decoder tuning: teach the decoder the latents the sampler actually reaches.

The world model is trained to decode the *encoder's* latent of the next board (plus a little noise). In use,
every latent comes from the EqM descent instead, and on an eating move those differ in one telling way: the
encoder's latent names the cell where new food appeared, while a descent from noise (or from the origin) lands
between the many possible food cells and names none. A decoder that learned "the snake grew" from the latent's
food part then lets the tail move on: the predicted snake is one cell short, the simulator's most common first
error in long games (docs/results/simulator.md).

This stage keeps the encoder and the field exactly as they are (actions, energies and the descent do not change)
and trains only the decoder, on latents drawn by the descent itself for held actions (the expert's and what-if
ones), from noise and from the origin, beside a share of encoder latents so `to_latent` → `decode_latent`
stays exact. Trained on draws that do not name the food, the decoder's FOOD probabilities become its belief of
where new food appears, which `simulator.core.draw_food_from_decoder` samples. With
`decoder_global_context=True` the decoder can also read "the snake ate" where it happens (the new head on the
old food cell) and carry it to the tail, instead of from the latent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from snake_world_eqm.game.encoding import EMPTY, FOOD
from snake_world_eqm.modeling_snake_world_eqm import reconstruction_loss

COLUMNS = ("state", "action", "next_state_per_action")
PARTS = ("decoder", "food_head")


@dataclass
class DecoderTuneConfig:
    """steps × batch_size rows; each row's target is the expert's successor or, with `whatif_fraction`, another
    action's (deaths included); `eat_fraction` of each batch are eating moves (an expert's or a what-if one), the
    rare rows where the decoder must keep the tail; `origin_fraction` of the sampled latents start at the origin
    (the EqM agent's and planner's start), the rest from N(0, I); `encoder_fraction` of rows decode the encoder's
    latent instead, on eating rows with the new food left out of it half of the time.

    `descent_food_loss=False` scores descent latents against the next board without its new food (they do not
    name it), so the decoder learns only the snake from them.

    `part="food_head"` trains the food head alone (the model needs `config.food_head`): every row is an eating
    move, every latent a descent's, and the loss is the cross-entropy of where the new food appeared; the
    decoder and every board it predicts stay as they are."""

    steps: int = 2000
    batch_size: int = 128
    learning_rate: float = 1e-3
    whatif_fraction: float = 0.5
    origin_fraction: float = 0.5
    encoder_fraction: float = 0.25
    eat_fraction: float = 0.25
    part: str = "decoder"
    descent_food_loss: bool = True
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate)
                and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {self.part!r}")
        for name in ("whatif_fraction", "origin_fraction", "encoder_fraction", "eat_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def check_rows(rows_by_size: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, int]:
    """Rows per size; a clear error for a missing column or inconsistent shapes."""
    if not rows_by_size:
        raise ValueError("no training rows: give at least one dataset")
    counts = {}
    for size, rows in rows_by_size.items():
        missing = [name for name in COLUMNS if name not in rows]
        if missing:
            raise ValueError(f"rows of {size} lack the column(s) {missing} (needed: {list(COLUMNS)})")
        states, actions, per_action = (np.asarray(rows[name]) for name in COLUMNS)
        n = len(states)
        if n == 0 or states.ndim != 3 or actions.shape != (n,) or per_action.shape != (n, 4, *states.shape[1:]):
            raise ValueError(f"rows of {size}: state (N, H, W), action (N,) and next_state_per_action (N, 4, H, W) "
                             f"expected, got {states.shape}, {actions.shape}, {per_action.shape}")
        counts[size] = n
    return counts


def eating_moves(rows: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(row, action) of every successor in which the snake grew (its new head took the food)."""
    states, per_action = np.asarray(rows["state"]), np.asarray(rows["next_state_per_action"])
    before = (states > FOOD).sum(axis=(1, 2))
    after = (per_action > FOOD).sum(axis=(2, 3))
    return np.nonzero(after > before[:, None])


def draw_batch(rows_by_size, counts: dict[str, int], config: DecoderTuneConfig, rng: np.random.Generator,
               eating: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None):
    """One size-bucketed batch (sizes drawn in proportion to their rows): boards, held actions, targets."""
    sizes = sorted(counts)
    weights = np.array([counts[s] for s in sizes], dtype=np.float64)
    size = sizes[rng.choice(len(sizes), p=weights / weights.sum())]
    rows = rows_by_size[size]
    index = rng.integers(0, counts[size], size=config.batch_size)
    expert = np.asarray(rows["action"])[index].astype(np.int64)
    other = (expert + rng.integers(1, 4, size=len(index))) % 4
    held = np.where(rng.random(len(index)) < config.whatif_fraction, other, expert)
    eat_rows, eat_actions = eating[size] if eating is not None else (np.zeros(0, np.int64), None)
    num_eat = min(int(round(config.eat_fraction * config.batch_size)), config.batch_size) if len(eat_rows) else 0
    if num_eat:
        pick = rng.integers(0, len(eat_rows), size=num_eat)
        index[:num_eat], held[:num_eat] = eat_rows[pick], eat_actions[pick]
    states = np.asarray(rows["state"])[index]
    targets = np.asarray(rows["next_state_per_action"])[index, held]
    return torch.as_tensor(states, dtype=torch.long), torch.as_tensor(held), torch.as_tensor(targets, dtype=torch.long)


@torch.no_grad()
def descent_latents(model, states: torch.Tensor, held: torch.Tensor, origin_fraction: float,
                    generator: torch.Generator) -> torch.Tensor:
    """Held-action latents as `sample()` draws them: the first rows from the origin, the rest from N(0, I)."""
    split = int(round(origin_fraction * len(states)))
    parts = []
    for lo, hi, scale in ((0, split, 0.0), (split, len(states), 1.0)):
        if hi > lo:
            out = model.sample(states[lo:hi], action=held[lo:hi], init_scale=scale, generator=generator,
                               validate=False)
            parts.append(out.latent_next)
    return torch.cat(parts)


@torch.no_grad()
def encoder_latents(model, states: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The encoder's latents of the targets plus the training noise; for half of the boards whose snake grew, the
    latent of the board without its new food (what a draw from noise looks like on an eating move)."""
    grew = (targets > FOOD).sum(dim=(1, 2)) > (states > FOOD).sum(dim=(1, 2))
    drop_food = grew & (torch.rand(len(states), generator=generator) < 0.5)
    boards = torch.where(drop_food[:, None, None] & (targets == FOOD), torch.full_like(targets, EMPTY), targets)
    latents = model.latent_encoder(boards, states)
    return latents + model.config.decoder_noise_std * torch.randn(latents.shape, generator=generator)


def decoder_loss(model, states: torch.Tensor, latents: torch.Tensor, targets: torch.Tensor,
                 skip_new_food: torch.Tensor | None = None) -> torch.Tensor:
    """The model's own reconstruction loss (changed cells up-weighted), on given latents; rows flagged in
    `skip_new_food` (B,) are scored against their board with the new food taken off (where it appeared is random,
    and a descent's latent does not name it: the food head draws it), so they teach the snake alone."""
    if skip_new_food is not None:
        new_food = (targets == FOOD) & (states != FOOD) & skip_new_food[:, None, None]
        targets = targets.masked_fill(new_food, EMPTY)
    logits = model.decoder(latents, model.decoder.board_features(states))
    return reconstruction_loss(logits, targets, states, model.config.recon_changed_weight)


def food_loss(model, states: torch.Tensor, latents: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the food head over the cells, on the rows whose target holds exactly one new food."""
    food = (targets == FOOD).flatten(1)
    grew = (targets > FOOD).sum(dim=(1, 2)) > (states > FOOD).sum(dim=(1, 2))
    rows = grew & (food.sum(1) == 1)
    logits = model.decoder.food_logits(latents[rows], model.decoder.board_features(states[rows])).flatten(1)
    return F.cross_entropy(logits, food[rows].to(torch.long).argmax(1))


def _trains(name: str, part: str) -> bool:
    return name.startswith("decoder.food_head." if part == "food_head" else "decoder.")


def tune_decoder(model, rows_by_size: Mapping[str, Mapping[str, np.ndarray]], config: DecoderTuneConfig,
                 log: Callable[[dict], None] | None = None, log_every: int = 50) -> dict:
    """Train the decoder (or, with `config.part="food_head"`, its food head) in place on descent latents; every
    other parameter stays as it was.

    rows_by_size: {"HxW": {"state", "action", "next_state_per_action"} arrays}. Returns a summary (config,
    final loss, samples, seconds)."""
    counts = check_rows(rows_by_size)
    eating = {size: eating_moves(rows) for size, rows in rows_by_size.items()}
    if config.part == "food_head":
        if getattr(model.decoder, "food_head", None) is None:
            raise ValueError("part='food_head' needs a model with a food head (config.food_head=True)")
        counts = {size: n for size, n in counts.items() if len(eating[size][0])}
        if not counts:
            raise ValueError("no eating move in the rows: the food head has nothing to learn from")
        config = replace(config, eat_fraction=1.0, encoder_fraction=0.0)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not _trains(name, config.part)}
    for name, param in model.named_parameters():
        param.requires_grad_(_trains(name, config.part))
    trained = [param for name, param in model.named_parameters() if _trains(name, config.part)]
    optimizer = torch.optim.AdamW(trained, lr=config.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps)))
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model.eval()  # no dropout in the encoder; the decoder has none
    start, running, history = time.perf_counter(), None, []
    for step in range(1, config.steps + 1):
        states, held, targets = draw_batch(rows_by_size, counts, config, rng, eating)
        latents = descent_latents(model, states, held, config.origin_fraction, generator)
        take_encoder = torch.rand(len(states), generator=generator) < config.encoder_fraction
        if take_encoder.any():
            latents[take_encoder] = encoder_latents(model, states[take_encoder], targets[take_encoder], generator)
        if config.part == "food_head":
            loss = food_loss(model, states, latents, targets)
        else:
            loss = decoder_loss(model, states, latents, targets,
                                None if config.descent_food_loss else ~take_encoder)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"decoder tuning: the loss became {loss.item()} at step {step}")
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if log is not None and (step % log_every == 0 or step == config.steps):
            entry = {"step": step, "loss": round(running, 6), "seconds": round(time.perf_counter() - start, 1)}
            history.append(entry)
            log(entry)
    for name, param in model.named_parameters():
        param.requires_grad_(True)
        if name in frozen and not torch.equal(frozen[name], param.detach()):
            raise RuntimeError(f"tuning the {config.part} changed {name}, which it must leave alone")
    return {"config": asdict(config), "rows": counts, "samples": config.steps * config.batch_size,
            "final_loss": running, "seconds": round(time.perf_counter() - start, 1), "history": history}


__all__ = ["COLUMNS", "PARTS", "DecoderTuneConfig", "food_loss", "check_rows", "decoder_loss", "descent_latents", "draw_batch",
           "eating_moves", "encoder_latents", "tune_decoder"]
