"""Write a trained head's user and item vectors to Qdrant as the ``rec`` named vectors."""

from __future__ import annotations

import numpy as np

from embedder.ids import resolve_items, user_point_id
from embedder.recommend.cf import ITEM_ONLY_PAYLOAD
from embedder.store import PointRecord, VectorStore


def write_rec(
    users_vecs: np.ndarray,
    items_vecs: np.ndarray,
    data,
    media: VectorStore,
    users: VectorStore,
    version: str,
    run_dir=None,
) -> dict:
    """Item ``rec`` vectors onto the media collection (new points for items without media) and user
    ``rec`` vectors into the users collection; other vectors and payload are kept."""
    ids = resolve_items(data.items, media)
    items = [
        PointRecord(ids[key], {"rec": vec}, {"item": key, "rec_model": version})
        for key, vec in zip(data.items, items_vecs)
    ]
    with_media, without_media = media.merge(items, new_payload=ITEM_ONLY_PAYLOAD)
    # The run directory travels with the user vectors: re-embedding serves new items from it.
    meta = {"rec_model": version, **({"rec_run": str(run_dir.resolve())} if run_dir is not None else {})}
    people = [
        PointRecord(user_point_id(u), {"rec": vec}, {"user": u, **meta}) for u, vec in zip(data.users, users_vecs)
    ]
    users.merge(people)
    return {
        "model": version,
        "users": len(people),
        "items": len(items),
        "items_with_media": with_media,
        "items_without_media": without_media,
    }


__all__ = ["write_rec"]
