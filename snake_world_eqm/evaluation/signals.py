"""EqM-native confidence signals of one board each, read from the descent itself (issue #30).

The EqM agent descends from the origin. Beside the final gradient norm (the seed's signal) this module reads:

* ``path_grad_norm``: the mean field norm over the whole descent, not only at its end;
* ``adaptive_steps``: the field evaluations an adaptive descent needs to get below a threshold (adaptive
  compute: a board the model is sure of converges early);
* ``energy_margin``: an implicit energy per held action. The shipped models learn the field f, not an
  energy E; where f is (close to) a gradient, E(end) - E(start) is the line integral of f along any path.
  For each action a the path runs from the origin along the action block to the one-hot of a, then down the
  held-action descent of the latent; the integral (trapezoid rule on the field at every point) gives
  E_a up to one shared constant. The margin is min over other actions of E_b - E_a* for the sampled action
  a*: small or negative where another action's basin is as low (the model is torn);
* ``energy_disagrees``: 1 where the lowest-energy action is not the sampled one.

Each is a score where higher means "less sure", to be ranked against labels by `metrics.auroc`.
"""

from __future__ import annotations

import numpy as np
import torch

from snake_world_eqm.agents.base import sample_model
from snake_world_eqm.game.state import NUM_ACTIONS

SEGMENT_POINTS = 8  # trapezoid points on the straight path from the origin to each action's one-hot


def _field_along(model, h: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Line integral of the field over a polyline of points (P, B, D): (B,)."""
    fields = torch.stack([model.field(h, p) for p in points])  # (P, B, D)
    steps = points[1:] - points[:-1]
    mids = 0.5 * (fields[1:] + fields[:-1])
    return (mids * steps).sum(dim=(0, 2))


def held_action_energies(model, boards: np.ndarray, h: torch.Tensor) -> torch.Tensor:
    """(B, 4) implicit energy of each held action's basin, relative to the origin (see module doc)."""
    energies = torch.zeros(h.shape[0], NUM_ACTIONS, device=h.device)
    fractions = torch.linspace(0, 1, SEGMENT_POINTS, device=h.device, dtype=h.dtype)[:, None, None]
    for action in range(NUM_ACTIONS):
        held = np.full(len(boards), action)
        # From the origin: the descent starts at (latent 0, the action's one-hot) and moves the latent only.
        trajectory = sample_model(model, boards, action=held, init_scale=0.0, return_trajectory=True).trajectory
        energies[:, action] = _field_along(model, h, fractions * trajectory[:1]) + _field_along(model, h, trajectory)
    return energies


@torch.no_grad()
def descent_signals(model, boards: np.ndarray, batch_size: int = 256, adaptive_threshold: float | None = None,
                    max_adaptive_steps: int = 60) -> dict[str, np.ndarray]:
    """Per board: the sampled action (from the origin, as the EqM agent plays) and every signal above.

    ``adaptive_threshold`` defaults to half the median final gradient norm of these boards' fixed-step descents:
    at the median itself nearly every board stops at the usual step count, or one after (measured on 10x10), and
    the steps tell nothing; half of it leaves room for the unsure boards to take longer.
    """
    pieces: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(boards), batch_size):
        chunk = np.asarray(boards[start:start + batch_size])
        out = sample_model(model, chunk, init_scale=0.0, return_trajectory=True)
        h = model.encode(torch.as_tensor(chunk, dtype=torch.long, device=model.device), validate=False)
        path = torch.stack([model.field(h, p).norm(dim=-1) for p in out.trajectory[:-1]])  # (T, B)
        energies = held_action_energies(model, chunk, h)
        chosen = out.action.long()
        own = energies.gather(1, chosen[:, None])[:, 0]
        others = energies.masked_fill(torch.nn.functional.one_hot(chosen, NUM_ACTIONS).bool(), float("inf"))
        values = {
            "action": chosen, "grad_norm": out.grad_norm, "path_grad_norm": path.mean(dim=0),
            "energy_margin": -(others.min(dim=1).values - own),  # higher = less sure
            "energy_disagrees": (energies.argmin(dim=1) != chosen).float(),
            "energies": energies,
        }
        for name, value in values.items():
            pieces.setdefault(name, []).append(value.detach().float().cpu().numpy())
    result = {name: np.concatenate(parts) for name, parts in pieces.items()}
    threshold = 0.5 * float(np.median(result["grad_norm"])) if adaptive_threshold is None else adaptive_threshold
    steps = []
    for start in range(0, len(boards), batch_size):
        chunk = np.asarray(boards[start:start + batch_size])
        out = sample_model(model, chunk, init_scale=0.0, adaptive_threshold=threshold, num_steps=max_adaptive_steps)
        steps.append(out.num_steps.float().cpu().numpy())
    result["adaptive_steps"] = np.concatenate(steps)
    result["adaptive_threshold"] = np.float64(threshold)
    return result


SIGNALS = ("grad_norm", "path_grad_norm", "adaptive_steps", "energy_margin", "energy_disagrees")
