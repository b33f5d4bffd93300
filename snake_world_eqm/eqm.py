"""Equilibrium Matching (EqM) math, kept pure and model-free (like a diffusers scheduler).

Conventions: a sample `x` of shape (B, D); noise `ε ~ N(0, I)` of the same shape; γ ∈ [0, 1] per sample
(γ = 1 is clean data, γ = 0 pure noise).

* interpolation   x_γ = γ·x + (1 - γ)·ε
* target          f*(x_γ) = (ε - x)·c(γ)      (descending f moves x_γ from the noise toward the data)
* c(γ), times the gradient multiplier λ, vanishes at the data (c(1) = 0):
    linear      c(γ) = λ(1 - γ)
    truncated   c(γ) = λ                       for γ < a;   λ(1 - γ)/(1 - a)   for γ ≥ a
    piecewise   c(γ) = λ(b + (1 - b)γ/a)       for γ < a;   λ(1 - γ)/(1 - a)   for γ ≥ a
                (from λb at the noise to λ at γ = a, then linearly to 0; the EqM paper's two-segment form)
* sampling: Nesterov accelerated gradient descent on the learned field,
    p = x_k + μ(x_k - x_{k-1}),   x_{k+1} = x_k - η f(p),   x_{-1} = x_0,
  with an optional per-sample stop once ‖f(p)‖ < threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "truncated", "piecewise")


def gradient_scale(
    gamma: torch.Tensor, schedule: str = "linear", multiplier: float = 1.0, a: float = 0.8, b: float = 1.5
) -> torch.Tensor:
    """c(γ)·λ for a tensor of γ in [0, 1]."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0.0 < a < 1.0:
        raise ValueError(f"a must be in (0, 1), got {a}")
    gamma = torch.as_tensor(gamma)
    if torch.any((gamma < 0) | (gamma > 1)):
        raise ValueError("gamma must lie in [0, 1]")
    decay = (1.0 - gamma) / (1.0 - a)  # the final linear segment, shared by truncated and piecewise
    if schedule == "linear":
        scale = 1.0 - gamma
    elif schedule == "truncated":
        scale = torch.where(gamma < a, torch.ones_like(gamma), decay)
    else:
        scale = torch.where(gamma < a, b + (1.0 - b) * gamma / a, decay)
    return multiplier * scale


def _per_sample(gamma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a (B,) γ over the trailing dimensions of `like`."""
    return gamma.reshape(gamma.shape + (1,) * (like.dim() - gamma.dim()))


def interpolate(x: torch.Tensor, noise: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """x_γ = γ·x + (1 - γ)·ε."""
    if x.shape != noise.shape:
        raise ValueError(f"x and noise must have the same shape, got {tuple(x.shape)} and {tuple(noise.shape)}")
    g = _per_sample(gamma, x)
    return g * x + (1.0 - g) * noise


def target_gradient(
    x: torch.Tensor,
    noise: torch.Tensor,
    gamma: torch.Tensor,
    schedule: str = "linear",
    multiplier: float = 1.0,
    a: float = 0.8,
    b: float = 1.5,
) -> torch.Tensor:
    """The EqM regression target (ε - x)·c(γ)."""
    c = gradient_scale(gamma, schedule, multiplier, a, b)
    return (noise - x) * _per_sample(c, x)


@dataclass
class NAGResult:
    """Result of `nag_descent`: final iterate, field evaluations used per sample, last ‖f‖ per sample."""

    x: torch.Tensor
    num_steps: torch.Tensor
    grad_norm: torch.Tensor
    last_field: torch.Tensor | None = None  # (B, D): f at each sample's last evaluation (masked)
    trajectory: torch.Tensor | None = None


# Far above any useful start (1 is EqM's N(0, I)); larger scales overflow float32 noise into inf and NaN.
MAX_INIT_SCALE = 1000.0


def check_init_scale(value, name: str = "init_scale") -> float:
    """The scale of the descent's start x0 ~ N(0, value² I): a number in [0, MAX_INIT_SCALE] (0: the origin)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= MAX_INIT_SCALE:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r} (at most {MAX_INIT_SCALE:g})")
    return float(value)


def nag_descent(
    field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    num_steps: int,
    step_size: float,
    momentum: float = 0.0,
    adaptive_threshold: float | None = None,
    update_mask: torch.Tensor | None = None,
    return_trajectory: bool = False,
) -> NAGResult:
    """Nesterov descent on a gradient field, each sample stopping on its own.

    field(p, index) returns f at the look-ahead points `p` (A, D) of the still-active samples `index` (A,);
    only active samples are evaluated, so adaptive stopping really saves compute.
    update_mask (D,) or (B, D) bool/0-1 selects the coordinates that move (others stay at x0, and ‖f‖ is
    measured over the moving ones): used to hold the action fixed and descend only the state.
    A sample stops when ‖f(p)‖ < adaptive_threshold; that evaluation counts in `num_steps` but no update
    follows it. trajectory (num_steps + 1, B, D) repeats the last iterate of samples that stopped early.
    """
    if x0.dim() != 2:
        raise ValueError(f"x0 must be (B, D), got shape {tuple(x0.shape)}")
    if num_steps < 1 or step_size <= 0 or not 0.0 <= momentum < 1.0:
        raise ValueError("need num_steps >= 1, step_size > 0 and momentum in [0, 1)")
    batch = x0.shape[0]
    mask = None if update_mask is None else torch.broadcast_to(update_mask.to(x0.dtype), x0.shape)
    x, x_prev = x0.clone(), x0.clone()
    trajectory = [x.clone()] if return_trajectory else None
    if adaptive_threshold is None:
        # Every sample runs every step: no per-step gathers (they dominate at batch size 1).
        everyone = torch.arange(batch, device=x0.device)
        for _ in range(num_steps):
            f = field(x + momentum * (x - x_prev), everyone)
            f = f if mask is None else f * mask
            x_prev, x = x, x - step_size * f
            if trajectory is not None:
                trajectory.append(x.clone())
        steps = torch.full((batch,), num_steps, dtype=torch.long, device=x0.device)
        return _finish(x, steps, f.norm(dim=-1), f, trajectory, num_steps)

    mask = torch.ones_like(x0) if mask is None else mask
    steps = torch.zeros(batch, dtype=torch.long, device=x0.device)
    grad_norm = torch.zeros(batch, dtype=x0.dtype, device=x0.device)
    last_field = torch.zeros_like(x0)
    active = torch.ones(batch, dtype=torch.bool, device=x0.device)
    for _ in range(num_steps):
        index = active.nonzero(as_tuple=True)[0]
        if index.numel() == 0:
            break
        xa, m = x[index], mask[index]
        lookahead = xa + momentum * (xa - x_prev[index])
        f = field(lookahead, index) * m
        norm = f.norm(dim=-1)
        steps[index] += 1
        grad_norm[index] = norm.detach()
        last_field[index] = f.detach()
        moving = norm >= adaptive_threshold
        active[index[~moving]] = False
        idx = index[moving]
        x_prev[idx] = xa[moving]
        x[idx] = xa[moving] - step_size * f[moving]
        if trajectory is not None:
            trajectory.append(x.clone())
    return _finish(x, steps, grad_norm, last_field, trajectory, num_steps)


def _finish(x, steps, grad_norm, last_field, trajectory, num_steps) -> NAGResult:
    traj = None
    if trajectory is not None:
        # Pad to num_steps + 1 so the shape does not depend on when samples stopped.
        trajectory += [trajectory[-1]] * (num_steps + 1 - len(trajectory))
        traj = torch.stack(trajectory)
    return NAGResult(x=x, num_steps=steps, grad_norm=grad_norm.detach(), last_field=last_field.detach(),
                     trajectory=traj)


__all__ = ["SCHEDULES", "gradient_scale", "interpolate", "target_gradient", "NAGResult", "check_init_scale",
           "nag_descent"]
