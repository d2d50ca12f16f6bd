"""rewardkit: GRPO post-training of language models with verifiable rewards."""

from rewardkit.registry import ADVANTAGES, REWARDS, TASKS, TRANSFORMS, RegistryError
from rewardkit.rewards.base import Reward, per_sample
from rewardkit.types import RewardOutput, RolloutBatch, Sample, Turn

__version__ = "0.1.0"

__all__ = [
    "ADVANTAGES",
    "REWARDS",
    "TASKS",
    "TRANSFORMS",
    "RegistryError",
    "Reward",
    "RewardOutput",
    "RolloutBatch",
    "Sample",
    "Turn",
    "per_sample",
]
