"""Training arrays from an interaction log and the stored (frozen) modality vectors."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from embedder.errors import EmbedderError
from embedder.recommend.cf import CFParams, fit_cf
from embedder.recommend.interactions import Interaction
from embedder.train.features import feature_stats, standardise


@dataclass
class TrainingData:
    """Index maps, item features and positive pairs, split into train and validation."""

    users: list[str]
    items: list[str]
    features: np.ndarray  # items x F: concatenated modality vectors (zeros where missing) + presence mask
    feature_names: list[str]
    train_pairs: np.ndarray  # N x 2 (user index, item index), positive events
    train_weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # summed weight per pair
    val: dict[int, set[int]] = field(default_factory=dict)  # user index -> held-out item indices
    history: list[np.ndarray] = field(default_factory=list)  # user index -> training item indices
    trainable_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # items seen in training
    feature_dims: list[int] = field(default_factory=list)  # size of each modality block, in feature_names order
    feature_mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    feature_std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])


def item_features(items: list[str], media, modalities: list[str]) -> tuple[np.ndarray, list[str]]:
    """The frozen modality vectors of each item that is ingested media; zeros elsewhere.

    A presence flag per modality is appended, so the head can tell "missing" from "zero".
    """
    if media is None or not modalities:
        return np.zeros((len(items), 0), np.float32), []
    from embedder.ids import resolve_items

    dims = media.collection_dims() or {}
    modalities = [m for m in modalities if m in dims]
    if not modalities:
        return np.zeros((len(items), 0), np.float32), []
    ids = resolve_items(items, media)
    # Only the blocks the head reads (never an item's segments).
    records = {r.id: r for r in media.retrieve(sorted(set(ids.values())), with_vectors=[*modalities, "content"])}
    if not any("content" in r.vectors for r in records.values()):
        return np.zeros((len(items), 0), np.float32), []
    width = sum(dims[m] for m in modalities) + len(modalities)
    out = np.zeros((len(items), width), np.float32)
    for row, item in enumerate(items):
        record = records.get(ids[item])
        if record is None:
            continue
        start = 0
        for k, m in enumerate(modalities):
            vec = record.vectors.get(m)
            if vec is not None:
                out[row, start : start + dims[m]] = vec
                out[row, width - len(modalities) + k] = 1.0
            start += dims[m]
    return out, modalities


def _block_sizes(media, names: list[str]) -> list[int]:
    dims = (media.collection_dims() or {}) if media is not None and names else {}
    return [dims[m] for m in names]


def build_training_data(
    events: list[Interaction],
    media=None,
    modalities=("visual", "audio", "text"),
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    extra_items: list[str] | None = None,
) -> TrainingData:
    """Positive pairs, a seeded per-user validation holdout, and item features.

    ``extra_items`` are items with no training events (cold items) that still need vectors.
    ``val_fraction`` 0 keeps every pair for training (the final refit after early stopping).
    """
    positives = [e for e in events if e.weight > 0]
    if not positives:
        raise EmbedderError("no positive interactions to train on")
    users = sorted({e.user for e in positives})
    items = sorted({e.item for e in positives} | set(extra_items or []))
    u_idx = {u: i for i, u in enumerate(users)}
    i_idx = {it: i for i, it in enumerate(items)}
    weights: dict[tuple[int, int], float] = {}
    for e in positives:
        key = (u_idx[e.user], i_idx[e.item])
        weights[key] = weights.get(key, 0.0) + e.weight
    pairs = sorted(weights)
    rng = random.Random(seed)
    by_user: dict[int, list[int]] = {}
    for u, i in pairs:
        by_user.setdefault(u, []).append(i)
    train, val = [], {}
    for u in sorted(by_user):
        its = by_user[u]
        # At least one validation item per user with three or more, so early stopping always
        # has something to measure, even on small logs.
        held = (
            set(rng.sample(its, max(1, round(len(its) * val_fraction))))
            if len(its) >= 3 and val_fraction > 0
            else set()
        )
        if held:
            val[u] = held
        train += [(u, i) for i in its if i not in held]
    history = [np.zeros(0, np.int64) for _ in users]
    for u in sorted(by_user):
        history[u] = np.asarray([i for i in by_user[u] if i not in val.get(u, ())], np.int64)
    features, names = item_features(items, media, list(modalities))
    mean, std = feature_stats(features, len(names))
    features = standardise(features, len(names), mean, std)
    train_arr = np.asarray(train, np.int64).reshape(-1, 2)
    return TrainingData(
        users=users,
        items=items,
        features=features,
        feature_names=names,
        train_pairs=train_arr,
        train_weights=np.asarray([weights[(u, i)] for u, i in train], np.float32),
        val=val,
        history=history,
        trainable_items=np.unique(train_arr[:, 1]),
        feature_dims=_block_sizes(media, names),
        feature_mean=mean,
        feature_std=std,
    )


def cf_factors(data: TrainingData, cf: CFParams, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ALS factors fitted on the training pairs (validation pairs excluded), in the data's index order.

    Items without training pairs (cold items) get zero rows: their vectors come from content.
    """
    events = [
        Interaction(data.users[u], data.items[i], float(w)) for (u, i), w in zip(data.train_pairs, data.train_weights)
    ]
    model = fit_cf(events, CFParams(**{**cf.to_dict(), "factors": dim}), seed=seed)
    users = np.zeros((len(data.users), dim), np.float32)
    items = np.zeros((len(data.items), dim), np.float32)
    u_index = {u: n for n, u in enumerate(data.users)}
    i_index = {it: n for n, it in enumerate(data.items)}
    users[[u_index[u] for u in model.users]] = model.user_factors
    items[[i_index[it] for it in model.items]] = model.item_factors
    return users, items
