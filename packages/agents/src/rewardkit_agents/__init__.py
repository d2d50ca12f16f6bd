"""rewardkit-agents: multi-turn text environments, SALT and GiGPO step-level advantages."""

from rewardkit_agents.envs import (
    ENVIRONMENTS,
    CliffWalkingEnv,
    FrozenLakeEnv,
    GridWorldEnv,
    TaxiEnv,
    TextEnv,
    make_environment,
    parse_action,
)
from rewardkit_agents.gigpo import GiGPO
from rewardkit_agents.graph import draw_graph, trajectory_graph
from rewardkit_agents.rewards import EpisodeSuccess
from rewardkit_agents.salt import SALT
from rewardkit_agents.tasks import FrozenLakeTask, GridWorldTask

__all__ = [
    "ENVIRONMENTS",
    "SALT",
    "CliffWalkingEnv",
    "EpisodeSuccess",
    "FrozenLakeEnv",
    "FrozenLakeTask",
    "GiGPO",
    "GridWorldEnv",
    "GridWorldTask",
    "TaxiEnv",
    "TextEnv",
    "draw_graph",
    "make_environment",
    "parse_action",
    "trajectory_graph",
]
