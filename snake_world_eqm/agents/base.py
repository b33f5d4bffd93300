"""The Agent interface and the one place where numpy boards cross into torch and back.

Agents play numpy boards ``(B, H, W)`` int8 (what the simulator, the evaluation and the app hold) and
return numpy actions ``(B,)`` int64; the world model works on torch tensors on its own device.
`sample_model` is that crossing, so every agent and the planner convert the same way.
"""

from __future__ import annotations

import inspect
from functools import cache

import numpy as np
import torch

from snake_world_eqm.game.encoding import encode_observation


def check_obs(obs: np.ndarray) -> np.ndarray:
    """`obs` as an array of shape (B, H, W); a ValueError naming the shape otherwise."""
    array = np.asarray(obs)
    if array.ndim != 3:
        raise ValueError(f"act_batch expects observations of shape (B, H, W), got {array.shape}")
    return array


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's weights (CPU for a parameter-free stand-in)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def as_numpy_long(tensor_or_array) -> np.ndarray:
    """A tensor or array as a host int64 array (one device-to-host copy for a tensor)."""
    if isinstance(tensor_or_array, torch.Tensor):
        return tensor_or_array.detach().cpu().numpy().astype(np.int64)
    return np.asarray(tensor_or_array).astype(np.int64)


@cache
def _takes_validate(method_type: type, method_name: str) -> bool:
    # Looked up once per model class: inspect.signature is slow next to one batch-1 sample.
    return "validate" in inspect.signature(getattr(method_type, method_name)).parameters


def accepts_validate(model, method_name: str) -> bool:
    """Whether `model.<method_name>` takes `validate=` (the package's models do; stand-ins may not)."""
    return _takes_validate(type(model), method_name)


def sample_model(model, boards: np.ndarray, generator: torch.Generator | None = None, **kwargs):
    """`model.sample` on numpy boards, on the model's device.

    The legality check is turned off: play feeds simulator boards (legal by construction), the planner
    feeds the model's own predictions (which may be illegal, and must still be scored, not rejected), and
    the energy metric feeds deliberately corrupted boards.
    """
    device = model_device(model)
    if accepts_validate(model, "sample"):
        kwargs.setdefault("validate", False)
    obs = torch.as_tensor(np.asarray(boards), dtype=torch.long, device=device)
    action = kwargs.pop("action", None)
    if action is not None:
        action = torch.as_tensor(np.asarray(action), dtype=torch.long, device=device)
    # sample() may use autograd internally (an explicit energy), so no torch.no_grad() here.
    return model.sample(obs, action=action, generator=generator, **kwargs)


class Agent:
    """Base class: subclasses implement `act_batch`; `act` plays one `SnakeState`."""

    name = "agent"
    deterministic = True  # a repeated board then proves a loop (closed-loop play uses this)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def act(self, state) -> int:
        return int(self.act_batch(encode_observation(state)[None])[0])
