"""Preference pairs built from verifiers that ship in packages (no hub access needed).

`build_source(name, **options)` -> (pairs, report): `code.humaneval`, `code.functions`
(where rewardkit-code ships it), `tools.bfcl`, `math.chain_sum`. `rewardkit-rm data`
writes them as JSONL, the format of users' own data.
"""

from __future__ import annotations

from typing import Any

from rewardkit_rm.data import Pair

SOURCES = ("code.humaneval", "code.functions", "tools.bfcl", "math.chain_sum")


def build_source(name: str, **options: Any) -> tuple[list[Pair], dict[str, Any]]:
    """The pairs of one source and what was skipped building them."""
    try:
        if name in ("code.humaneval", "code.functions"):
            from rewardkit_rm.sources.code import code_pairs, functions_problems, humaneval_problems

            problems = humaneval_problems if name == "code.humaneval" else functions_problems
            limit = options.pop("limit", None)
            pairs, report = code_pairs(problems(limit), name, **options)
        elif name == "tools.bfcl":
            from rewardkit_rm.sources.tools import tools_pairs

            pairs, report = tools_pairs(**options)
        elif name == "math.chain_sum":
            from rewardkit_rm.sources.math import math_pairs

            pairs, report = math_pairs(**options)
        else:
            raise ValueError(f"unknown preference source {name!r}; known: {', '.join(SOURCES)}")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"source {name!r} needs {exc.name!r}: install rewardkit-rm[sources] "
            "(rewardkit-code, rewardkit-tools, rewardkit-math)"
        ) from exc
    except TypeError as exc:
        raise ValueError(f"source {name!r}: {exc}") from None
    return pairs, report.as_dict()
