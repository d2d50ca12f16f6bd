"""Balanced residual k-means: the item quantiser of GREAM (arXiv 2510.20815, §3.1).

Level l clusters the residual R_{l-1} of every item into K clusters whose sizes are
constrained to ⌊n/K⌋ or ⌈n/K⌉ (so within ⌊n/K⌋ ± 1), then subtracts the centroid of the
assigned cluster: R_l = R_{l-1} − c_l(item), with R_0 the item embedding. The code of an
item at level l is its cluster index there.

The size constraint is enforced in the assignment step of Lloyd's algorithm: items are
visited in order of *regret* (how much farther their second-best centroid is than their
best), and each takes the nearest centroid that still has room. Exactly n mod K clusters
may hold ⌈n/K⌉ items and the others ⌊n/K⌋; the capacities add up to n, so every item
finds a cluster.
"""

from __future__ import annotations

import numpy as np


def _check_matrix(x: np.ndarray, k: int, who: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(
            f"{who}: embeddings must be a 2-D (n_items, dim) array, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{who}: embeddings contain NaN/inf (first at row {bad[0]}, column {bad[1]})"
        )
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"{who}: the number of clusters must be a positive int, got {k!r}")
    if x.shape[0] < k:
        raise ValueError(f"{who}: {x.shape[0]} items cannot fill {k} clusters; use fewer codes")
    return x


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(n, K) matrix of ||x_i − c_k||², clipped at 0 against rounding."""
    d = (x**2).sum(1)[:, None] - 2.0 * x @ centroids.T + (centroids**2).sum(1)[None, :]
    return np.maximum(d, 0.0)


def balanced_assign(distances: np.ndarray) -> np.ndarray:
    """Size-constrained assignment: labels (n,) with every cluster of size ⌊n/K⌋ or ⌈n/K⌉.

    Items with the largest regret (second-nearest minus nearest distance) choose first;
    each takes its nearest cluster that still has room.
    """
    n, k = distances.shape
    floor, n_big = divmod(n, k)  # n_big clusters may hold floor + 1
    order_per_item = np.argsort(distances, axis=1, kind="stable")
    if k > 1:
        best = np.take_along_axis(distances, order_per_item[:, :2], axis=1)
        regret = best[:, 1] - best[:, 0]
    else:
        regret = np.zeros(n)
    sizes = [0] * k  # plain lists: this loop is the hot spot
    labels = [-1] * n
    preferences = order_per_item.tolist()
    big_used = 0
    for i in np.argsort(-regret, kind="stable").tolist():
        for c in preferences[i]:
            if sizes[c] < floor:
                break
            if sizes[c] == floor and big_used < n_big:
                big_used += 1
                break
        else:  # unreachable: capacities add up to n
            raise RuntimeError("balanced_assign: no cluster had room (capacity bookkeeping bug)")
        labels[i] = c
        sizes[c] += 1
    return np.asarray(labels, dtype=np.int64)


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007)."""
    centroids = [x[rng.integers(len(x))]]
    closest = squared_distances(x, centroids[0][None])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        idx = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=closest / total)
        centroids.append(x[idx])
        closest = np.minimum(closest, squared_distances(x, x[idx][None])[:, 0])
    return np.stack(centroids)


def balanced_kmeans(
    x: np.ndarray, k: int, iterations: int = 25, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm with the balanced assignment step; returns (labels, centroids)."""
    x = _check_matrix(x, k, "balanced_kmeans")
    rng = np.random.default_rng(seed)
    centroids = _kmeans_plus_plus(x, k, rng)
    labels = balanced_assign(squared_distances(x, centroids))
    for _ in range(iterations):
        for c in range(k):
            centroids[c] = x[labels == c].mean(axis=0)
        new = balanced_assign(squared_distances(x, centroids))
        if np.array_equal(new, labels):
            break
        labels = new
    for c in range(k):
        centroids[c] = x[labels == c].mean(axis=0)
    return labels, centroids


def residual_kmeans(x: np.ndarray, levels: int, k: int, seed: int = 42) -> np.ndarray:
    """Codes (n, levels), 0-based: level l quantises R_{l-1}, then R_l = R_{l-1} − c_l(item)."""
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"residual_kmeans: levels must be a positive int, got {levels!r}")
    residual = _check_matrix(x, k, "residual_kmeans").copy()
    codes = np.zeros((residual.shape[0], levels), dtype=np.int64)
    for level in range(levels):
        labels, centroids = balanced_kmeans(residual, k, seed=seed + level)
        codes[:, level] = labels
        residual = residual - centroids[labels]
    return codes
