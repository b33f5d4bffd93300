"""Moved to `snake_world_eqm.agents`; this path re-exports the agents for one release."""

from snake_world_eqm.agents.base import Agent, sample_model  # noqa: F401
from snake_world_eqm.agents.planner import PlannerAgent  # noqa: F401
from snake_world_eqm.agents.simple import BaselineAgent, EqMAgent, ExpertAgent, RandomAgent  # noqa: F401
from snake_world_eqm.game.geometry import bfs_from_head, grid_distances, neck_directions  # noqa: F401
