"""Players of Snake behind one interface (`act_batch(boards) -> actions`): random, the experts, the
behaviour-cloning baseline, the EqM agent and the planner that imagines inside the world model; and one
factory (`make_agent`, `load_policy`) that every command uses.

Names load their module on first use, so `agents.flags` (argparse only) stays free of torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "base": ("Agent", "sample_model"),
    "simple": ("BaselineAgent", "EqMAgent", "ExpertAgent", "RandomAgent"),
    "planner": ("ModelPlanner", "PlannerAgent", "PlannerConfig", "PlannerStats", "planner_options_from_args"),
    "factory": ("AGENT_NAMES", "load_policy", "make_agent"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
