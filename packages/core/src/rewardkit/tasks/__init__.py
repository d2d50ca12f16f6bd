"""Built-in tasks (registered on import) and the Task contract."""

from rewardkit.tasks import arith  # noqa: F401  (registers core.arith and its rewards)
from rewardkit.tasks.base import RewardSpec, Task

__all__ = ["RewardSpec", "Task"]
