"""Built-in tasks (registered on import) and the Task contract."""

from rewardkit.tasks import (
    arith,  # noqa: F401  (registers core.arith and its rewards)
    chat_arith,  # noqa: F401  (core.chat_arith, core.last_number)
)
from rewardkit.tasks.base import RewardSpec, Task

__all__ = ["RewardSpec", "Task"]
