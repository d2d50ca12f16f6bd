"""rewardkit-rm: reward models — train them, evaluate them, use them as rewards."""

from rewardkit_rm.losses import LOSSES, build_loss

__all__ = ["LOSSES", "build_loss"]
