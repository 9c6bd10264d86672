"""Throwaway embedded stores for evaluating and tuning recommendation queries.

Evaluation and tuning serve every list through the same Qdrant queries ``embedder recommend``
runs, so they need a store holding a split's models and the items' content: one made here, in a
temporary folder, and dropped after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from embedder.store.base import LEXICAL, PointRecord, Sparse


def item_vectors(media, items: list[str]) -> dict[str, dict]:
    """``content`` (dense) and ``lexical`` (the words, sparse) vectors of the log's items that a
    media store holds (ingested files or imported catalogue rows, matched by id or path)."""
    from embedder.ids import resolve_items

    ids = resolve_items(items, media)
    records = {r.id: r for r in media.retrieve(sorted(set(ids.values())), with_vectors=["content", LEXICAL])}
    out = {}
    for item, pid in ids.items():
        vectors = records[pid].vectors if pid in records else {}
        if "content" in vectors:
            out[item] = {k: v for k, v in vectors.items() if k == "content" or isinstance(v, Sparse)}
    return out


def content_dim(vectors: dict[str, dict]) -> int | None:
    """The size of the items' content vectors, or ``None`` when there are none."""
    first = next(iter(vectors.values()), None)
    return len(np.asarray(first["content"])) if first else None


def load_items(store, vectors: dict[str, dict]) -> None:
    """Give each item its point, with its content (and words) and no interactions yet."""
    from embedder.ids import item_point_id

    store.upsert(
        [
            PointRecord(item_point_id(item), dict(v), {"item": item, "popularity": 0.0, "paths": []})
            for item, v in vectors.items()
        ]
    )


@contextlib.contextmanager
def scratch_stores(folder: Path, factors: int, rec_dim: int, vectors: dict[str, dict]) -> Iterator[tuple]:
    """``(items, users)`` embedded stores under ``folder``, the items loaded with ``vectors``;
    closed on exit."""
    from embedder.store.edge import EdgeStore

    dims = {"cf": factors, "cf_sim": factors, "rec": rec_dim}
    if (size := content_dim(vectors)) is not None:
        dims["content"] = size  # a media schema: the words' sparse vector comes with it
    items = EdgeStore(Path(folder) / "store", "eval")
    users = EdgeStore(Path(folder) / "store", "eval_users")
    try:
        items.ensure_collection(dims)
        users.ensure_collection({"cf": factors, "rec": rec_dim})
        load_items(items, vectors)
        yield items, users
    finally:
        items.close()
        users.close()


__all__ = ["content_dim", "item_vectors", "load_items", "scratch_stores"]
