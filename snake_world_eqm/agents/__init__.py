"""Players of Snake behind one interface (`act_batch(boards) -> actions`): random, the experts, the
behaviour-cloning baseline, the EqM agent and the planner that imagines inside the world model; and one
factory (`make_agent`, `load_policy`) that every command uses.

Names load their module on first use, so `agents.flags` (argparse only) stays free of torch.
"""

from __future__ import annotations

from snake_world_eqm.lazy import lazy_exports

_EXPORTS = {
    "base": ("Agent", "sample_model"),
    "simple": ("BaselineAgent", "EqMAgent", "ExpertAgent", "RandomAgent"),
    "planner": ("ModelPlanner", "PlannerAgent", "PlannerConfig", "PlannerStats", "planner_options_from_args"),
    "factory": ("AGENT_NAMES", "load_policy", "make_agent"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

