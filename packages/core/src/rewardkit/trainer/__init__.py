"""The GRPO trainer, its config and its rollouts."""

from rewardkit.trainer.config import ConfigError, GRPOConfig

__all__ = ["ConfigError", "GRPOConfig", "GRPOTrainer"]


def __getattr__(name):  # the trainer pulls in accelerate/transformers: load on use
    if name == "GRPOTrainer":
        from rewardkit.trainer.trainer import GRPOTrainer

        return GRPOTrainer
    raise AttributeError(name)
