"""Advantage estimators (registry "rewardkit.advantages"): importing this package
registers every built-in estimator: grpo, dr_grpo, rloo, canon, process."""

from rewardkit.advantages.base import (
    AdvantageEstimator,
    broadcast,
    check_batch,
    group_mean,
    group_std,
    group_sum,
)
from rewardkit.advantages.canon import CANONAdvantage
from rewardkit.advantages.outcome import DrGRPOAdvantage, GRPOAdvantage, RLOOAdvantage
from rewardkit.advantages.process import ProcessAdvantage

__all__ = [
    "AdvantageEstimator",
    "CANONAdvantage",
    "DrGRPOAdvantage",
    "GRPOAdvantage",
    "ProcessAdvantage",
    "RLOOAdvantage",
    "broadcast",
    "check_batch",
    "group_mean",
    "group_std",
    "group_sum",
]
