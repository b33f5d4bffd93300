"""snake-world-eqm: a Snake world model trained by Equilibrium Matching.

Heavy modules (torch, transformers) load on first attribute access, so `import snake_world_eqm` stays light.
Importing the model classes also registers them with AutoConfig / AutoModel; importing the package registers
the Gymnasium env `snake_world_eqm/Snake-v0` (`gymnasium.make` works right after `import snake_world_eqm`).
"""

from __future__ import annotations

import importlib

from snake_world_eqm import game  # noqa: F401  (registers the Gymnasium env)
from snake_world_eqm.shipped import PRETRAINED_10X10, PRETRAINED_MULTISIZE

__version__ = "0.1.0"


_LAZY = {
    "SnakeWorldEqMConfig": "configuration_snake_world_eqm",
    "SnakePolicyBaselineConfig": "configuration_snake_world_eqm",
    "SnakeWorldEqM": "modeling_snake_world_eqm",
    "SnakePolicyBaseline": "modeling_snake_world_eqm",
    "SnakeWorldEqMOutput": "modeling_snake_world_eqm",
    "SnakeWorldEqMSampleOutput": "modeling_snake_world_eqm",
    "SnakePolicyBaselineOutput": "modeling_snake_world_eqm",
}

__all__ = ["PRETRAINED_10X10", "PRETRAINED_MULTISIZE", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        # Importing the modeling module (even for a config) registers the Auto classes.
        importlib.import_module(f"{__name__}.modeling_snake_world_eqm")
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
