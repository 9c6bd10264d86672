"""Scaling of the frozen modality vectors the head reads, shared by training and serving (a new
item is scaled with the statistics saved with its run)."""

from __future__ import annotations

import numpy as np


def feature_stats(features: np.ndarray, n_flags: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation over the items that have features."""
    body = features[:, : features.shape[1] - n_flags]
    present = np.abs(body).sum(axis=1) > 0
    if present.sum() < 2:
        return np.zeros(body.shape[1], np.float32), np.ones(body.shape[1], np.float32)
    return body[present].mean(axis=0), body[present].std(axis=0) + 1e-6


def standardise(features: np.ndarray, n_flags: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Z-score the vector dimensions of items that have features; presence flags stay 0/1.

    Frozen embeddings share a large common component (all cosines high), which would drown the
    differences the head must learn from; centring and scaling exposes them. The statistics are
    saved with a run so that new items are scaled the same way when served.
    """
    if features.shape[1] == 0:
        return features
    out = features.copy()
    body = out[:, : out.shape[1] - n_flags]
    present = np.abs(body).sum(axis=1) > 0
    body[present] = (body[present] - mean) / std
    return out
