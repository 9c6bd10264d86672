"""Tune the hybrid strategy on a validation split, through the hybrid Qdrant query itself."""

from __future__ import annotations

import tempfile

import numpy as np

from embedder.recommend.fitting import fit_and_store
from embedder.recommend.hybrid import HybridParams, sides_available, tune_hybrid
from embedder.recommend.interactions import Interaction
from embedder.recommend.queries import recommend_for_user
from embedder.recommend.scratch import scratch_stores
from embedder.recommend.splits import ndcg_at_k, users_to_score
from embedder.recommend.tune import carve_validation

VALIDATION_USERS = 300  # users whose validation lists score each candidate (enough to rank a dozen)


def tune_hybrid_on_validation(
    train: list[Interaction],
    vectors: dict[str, dict],
    base: str,
    base_params,
    *,
    split: str = "random-holdout",
    seed: int = 0,
    max_users: int = VALIDATION_USERS,
    k: int = 10,
) -> dict:
    """:func:`tune_hybrid` with each candidate scored by validation NDCG@k: a validation split is
    carved from ``train`` (the test part of an evaluation is never seen), the collaborative model
    ``base`` is fitted on the rest with ``base_params``, and a sample of the validation users get
    their lists from the hybrid Qdrant query itself, on a scratch store holding ``vectors`` (the
    items' content and words, :func:`embedder.recommend.scratch.item_vectors`)."""
    _, carved = carve_validation(train, split, seed)
    history, relevant, users = users_to_score(carved.train, carved.test, max_users, seed)
    factors = getattr(base_params, "factors", 8)
    with (
        tempfile.TemporaryDirectory(prefix="embedder-hybrid-") as tmp,
        scratch_stores(tmp, factors, 8, vectors) as (store, user_store),
    ):
        fit_and_store(base, base_params, carved.train, store, user_store, seed)

        def score(params: HybridParams) -> float:
            lists = [
                [
                    r.item
                    for r in recommend_for_user(
                        u, history[u], store, user_store, limit=k, strategy="hybrid", hybrid=params,
                        popular_fallback=False,
                    ).items
                ]
                for u in users
            ]  # fmt: skip
            return float(np.mean([ndcg_at_k(lst, relevant[u], k) for lst, u in zip(lists, users)])) if users else 0.0

        result = tune_hybrid(score, HybridParams(base=base), sides_available(vectors))
    return {**result, "validation_users": len(users)}


__all__ = ["VALIDATION_USERS", "tune_hybrid_on_validation"]
