"""Moved to `snake_world_eqm.agents.planner`; this path re-exports it for one release."""

from snake_world_eqm.agents.planner import *  # noqa: F401,F403
from snake_world_eqm.agents.planner import ModelPlanner, PlannerAgent, PlannerConfig, imagined_risk  # noqa: F401
