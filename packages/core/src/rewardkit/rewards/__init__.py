"""Rewards: the batch contract, the per-sample decorator, the scorer and transforms."""

from rewardkit.rewards.base import Reward, SampleReward, build_reward, per_sample
from rewardkit.rewards.lifecycle import LearnedReward, RewardContext
from rewardkit.rewards.scoring import RewardError, Scorer, ScoreResult, WeightedReward

__all__ = [
    "LearnedReward",
    "Reward",
    "RewardContext",
    "RewardError",
    "SampleReward",
    "ScoreResult",
    "Scorer",
    "WeightedReward",
    "build_reward",
    "per_sample",
]
