"""Real-time updates: what new events change at once, without retraining.

* popularity: an item's ``popularity`` counts a user's first positive event for it (once the
  user has ``popularity_min_items`` liked items);
* the user's ``cf`` vector: recomputed against the stored item factors (the ALS fold-in,
  :func:`embedder.recommend.cf.fold_in_user`); a new user gets one from their first events.

The item factors themselves (and so other users' vectors) wait for the next
``embedder interactions train``, as does the fold-in under bm25 weighting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from embedder.ids import resolve_items, user_point_id
from embedder.recommend.cf import CFParams, fold_in_user
from embedder.store import PointRecord, VectorStore


@dataclass(frozen=True)
class ItemFactors:
    """The stored collaborative model's item factors, as the fold-in needs them."""

    version: str  # the cf_model that wrote them
    ids: list[str]  # point ids, in row order
    factors: np.ndarray  # items x factors
    gram: np.ndarray  # factors^T factors, computed once per model

    @classmethod
    def load(cls, media: VectorStore) -> ItemFactors | None:
        """Read every item's ``cf`` vector; ``None`` when no collaborative model is stored."""
        dims = media.collection_dims()
        if dims is None or "cf" not in dims:
            return None
        ids, vectors, version = [], [], None
        for record in media.scroll(with_vectors=True):
            vec = record.vectors.get("cf")
            if vec is not None and record.payload.get("cf_model"):
                ids.append(record.id)
                vectors.append(vec)
                version = version or record.payload["cf_model"]
        if not ids:
            return None
        factors = np.asarray(vectors, np.float32)
        return cls(version, ids, factors, factors.T @ factors)

    def current(self, media: VectorStore) -> bool:
        """Whether the store still holds this model (one point read)."""
        probe = media.retrieve([self.ids[0]])
        return bool(probe) and probe[0].payload.get("cf_model") == self.version


def count_new_positives(
    media: VectorStore, before: dict[str, set[str]], after: dict[str, list], min_items: int = 1
) -> int:
    """Add to each item's popularity the users whose first positive event for it is new.

    Args:
        before: user -> items they had positive events for, before the new events.
        after: user -> their events now.
        min_items: a user counts only with positive events for this many distinct items; the
            event that reaches it counts every item they liked (``popularity_min_items``).

    Returns:
        How many items were updated.
    """
    new = set()
    for user, history in after.items():
        liked = {e.item for e in history if e.weight > 0}
        if len(liked) < min_items:
            continue
        counted_before = before[user] if len(before[user]) >= min_items else set()
        new |= {(user, item) for item in liked - counted_before}
    if not new or media.collection_dims() is None:
        return 0
    ids = resolve_items(sorted({item for _, item in new}), media)
    counts = Counter(ids[item] for _, item in new)
    found = {r.id: r for r in media.retrieve(sorted(counts))}
    for pid, n in counts.items():
        if pid in found:
            media.set_payload([pid], {"popularity": float(found[pid].payload.get("popularity") or 0) + n})
    return sum(pid in found for pid in counts)


def fold_in_users(
    media: VectorStore, users: VectorStore, histories: dict[str, list], model: ItemFactors | None, params: CFParams
) -> dict:
    """Recompute each user's ``cf`` vector from their events against ``model``'s item factors.

    Returns:
        ``cf_users_updated`` and ``cf`` (what happened, in words).
    """
    if model is None:
        return {"cf": "no collaborative model yet: 'embedder interactions train' makes one"}
    if params.weighting == "bm25":
        return {"cf": "waits for the next training: bm25 confidences need the whole interaction matrix"}
    row_of = {pid: n for n, pid in enumerate(model.ids)}
    points = []
    for user, history in histories.items():
        weights: dict[str, float] = {}
        for e in history:
            if e.weight > 0:
                weights[e.item] = weights.get(e.item, 0.0) + e.weight
        resolved = resolve_items(sorted(weights), media)
        pairs = [(row_of[resolved[item]], w) for item, w in weights.items() if resolved[item] in row_of]
        if not pairs:
            continue  # none of their items has factors yet
        vector = fold_in_user([r for r, _ in pairs], [w for _, w in pairs], model.factors, model.gram, params)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)  # stored unit length, as write_cf does
        points.append(PointRecord(user_point_id(user), {"cf": vector}, {"user": user, "cf_model": model.version}))
    if points:
        if users.collection_dims() is None:
            users.ensure_collection({"cf": model.factors.shape[1]})
        users.merge(points)
    return {"cf_users_updated": len(points), "cf": f"folded in against {model.version}"}
