"""pass@k with the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language
Models Trained on Code", eq. 1): pass@k = 1 - C(n-c, k) / C(n, k), computed as the
numerically stable product 1 - prod_{i=n-c+1}^{n} (1 - k / i)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) passes."""
    if not all(isinstance(v, int) for v in (n, c, k)):
        raise TypeError(f"n, c, k must be ints, got {n!r}, {c!r}, {k!r}")
    if n < 1 or k < 1:
        raise ValueError(f"need n >= 1 and k >= 1, got n={n}, k={k}")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of samples n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"c={c} correct samples is outside [0, n={n}]")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(results: Mapping[str, Sequence[bool]], ks: Sequence[int]) -> dict[str, float]:
    """Average pass@k over problems; `results[problem]` = correctness of each sample.
    A k larger than a problem's sample count is left out of the table."""
    if not results:
        raise ValueError("no results to evaluate")
    table: dict[str, float] = {}
    for k in ks:
        if all(len(r) >= k for r in results.values()):
            values = [pass_at_k(len(r), sum(bool(x) for x in r), k) for r in results.values()]
            table[f"pass@{k}"] = sum(values) / len(values)
    return table
