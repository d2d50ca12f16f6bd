"""Built-in rewards of the core package (registered on import)."""

from rewardkit.tasks import arith  # noqa: F401  (core.exact_answer, core.number_format)
