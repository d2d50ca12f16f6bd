"""Bootstrap confidence intervals for success rates measured over seeds x held-out layouts.

An experiment's score is a (seeds, layouts) array: the success rate of each training seed
on each held-out layout (or a paired difference: two runs of the same seed on the same
layouts, subtracted). Both sources of noise count: a different seed trains a different
policy, a different set of layouts tests it differently. `hierarchical_bootstrap`
resamples both, seeds with replacement and layouts with replacement (the same layouts for
every seed, so pairing by layout is kept), and returns the mean and a percentile interval.
With few seeds the seed level is coarse (3 seeds give 10 distinct seed resamples); the
interval is then as wide as the seeds disagree, which is the honest answer.
"""

from __future__ import annotations

import numpy as np


def hierarchical_bootstrap(
    values, resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high) of the mean of a (seeds, layouts) array, resampling seeds and
    layouts with replacement; the interval is the central `level` of the resampled means."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"expected a non-empty (seeds, layouts) array, got shape {x.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    n_seeds, n_layouts = x.shape
    seeds = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    layouts = rng.integers(0, n_layouts, size=(resamples, n_layouts))
    # mean over the resampled grid = mean over seeds of (row means over resampled layouts)
    per_seed = np.stack([x[:, idx].mean(axis=1) for idx in layouts])  # (resamples, seeds)
    means = np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(x.mean()), float(low), float(high)
