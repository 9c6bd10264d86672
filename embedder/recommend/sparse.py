"""Item-to-item models in Qdrant: each item's column of ``B`` as a sparse vector, each user's
positives as a sparse query, so Qdrant's sparse dot product scores exactly ``x_u · B[:, i]``.

Dimensions are item indices that never change: every item point gets an ``i2i_index`` payload
the first time a model is written, and keeps it through later models, so a retrained model
reuses the same numbering and a user's query needs only their items' payloads. An item's
payload also says which model wrote its vector (``<kind>_model``) and how that model turned
weights into ``x_u`` (``<kind>_weighting``), so the query is built the way the model was fitted.

A new event changes the user's history, so the very next query reflects it; nothing is folded in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedder.ids import resolve_items
from embedder.recommend.cf import ITEM_ONLY_PAYLOAD
from embedder.recommend.interactions import Interaction
from embedder.recommend.itemitem import ItemItemModel, user_vector
from embedder.store import PointRecord, Sparse, SparseNearest, VectorStore

INDEX_KEY = "i2i_index"
# A user's newest positive items that make their query. Large enough that a query is the model's
# exact score for all but the heaviest users (docs/recommendation-models.md says so); Qdrant's sparse search costs
# grow with the query's length.
QUERY_ITEMS = 1000


def model_key(kind: str) -> str:
    """The payload key that names the model which wrote an item's ``kind`` vector."""
    return f"{kind}_model"


def weighting_key(kind: str) -> str:
    """The payload key that says how the ``kind`` model turns weights into ``x_u``."""
    return f"{kind}_weighting"


def stored_indices(media: VectorStore, kind: str) -> tuple[dict[str, int], set[str]]:
    """Point id -> ``i2i_index`` for every point that has one, and the points a ``kind`` model
    wrote a vector to (one read of the collection's payloads for both)."""
    index_of, written = {}, set()
    for r in media.scroll():
        if r.payload.get(INDEX_KEY) is not None:
            index_of[r.id] = int(r.payload[INDEX_KEY])
        if r.payload.get(model_key(kind)):
            written.add(r.id)
    return index_of, written


def write_item_item(model: ItemItemModel, media: VectorStore, batch: int = 1000) -> dict:
    """Store ``model``'s columns as the items' sparse ``model.kind`` vectors.

    Items known only from interactions get points of their own (as for ALS); items the previous
    model of this kind covered but this one does not lose that vector, so no stale weight answers.

    Returns:
        A summary: model, items, items with media / without, stored weights, and left out items.
    """
    kind = model.kind
    media.ensure_sparse(kind)
    ids = resolve_items(model.items, media)
    index_of, written_before = stored_indices(media, kind)
    next_index = max(index_of.values(), default=-1) + 1
    for key in model.items:
        if ids[key] not in index_of:
            index_of[ids[key]] = next_index
            next_index += 1
    dimension = np.asarray([index_of[ids[key]] for key in model.items], np.int64)
    weights = model.weights.tocsc()
    points, empty = [], []
    for n, key in enumerate(model.items):
        start, end = weights.indptr[n], weights.indptr[n + 1]
        column = Sparse.of(dimension[weights.indices[start:end]], weights.data[start:end])
        payload = {
            "item": key,
            "popularity": float(model.popularity.get(key, 0)),
            INDEX_KEY: index_of[ids[key]],
            model_key(kind): model.version,
            weighting_key(kind): model.params.weighting,
        }
        points.append(PointRecord(ids[key], {kind: column} if len(column) else {}, payload))
        if not len(column):
            empty.append(ids[key])
    existing = set()
    for start in range(0, len(points), batch):
        existing |= {r.id for r in media.retrieve([p.id for p in points[start : start + batch]])}
    new = [PointRecord(p.id, p.vectors, {**ITEM_ONLY_PAYLOAD, **p.payload}) for p in points if p.id not in existing]
    old = [p for p in points if p.id in existing]
    for start in range(0, len(new), batch):
        media.upsert(new[start : start + batch])
    with_vectors = [p for p in old if p.vectors]
    for start in range(0, len(with_vectors), batch):
        media.update_vectors({p.id: p.vectors for p in with_vectors[start : start + batch]})
    for p in old:
        media.set_payload([p.id], p.payload)
    # Points this kind's previous model wrote and this one did not (or wrote empty): drop the vector.
    current = {p.id for p in points if p.vectors}
    stale = sorted((written_before | set(empty)) - current)
    if stale:
        media.delete_vectors(stale, [kind])
        media.set_payload(stale, {model_key(kind): None})
    return {
        "model": model.version,
        "kind": kind,
        "items": len(model.items),
        "items_with_media": len(old),
        "items_without_media": len(new),
        "weights": int(weights.nnz),
        "left_out_items": model.left_out,
        "fit_seconds": model.fit_seconds,
        "settings": model.params.relevant(),
    }


@dataclass
class UserQuery:
    """A user's sparse query for one item-to-item model, and the items it was built from."""

    spec: SparseNearest
    items: dict[int, str]  # dimension -> the point id of the user's item there (for explanations)


def summed_positives(history: list[Interaction], limit: int = QUERY_ITEMS) -> dict[str, float]:
    """Item -> summed positive weight, for the user's ``limit`` most recently touched items."""
    sums: dict[str, float] = {}
    for e in history:
        if e.weight > 0:
            sums[e.item] = sums.get(e.item, 0.0) + e.weight
    newest: list[str] = list(dict.fromkeys(e.item for e in reversed(history) if e.weight > 0))[:limit]
    return {item: sums[item] for item in newest}


def user_query(
    kind: str, history: list[Interaction], media: VectorStore, ids: dict[str, str] | None = None
) -> UserQuery | None:
    """The sparse query ``x_u`` for ``kind``: the user's positives at their items' dimensions,
    weighted as the model was fitted; ``None`` when none of them is in a stored ``kind`` model.
    ``ids``: item key -> point id for the history's items, when the caller resolved them already."""
    positives = summed_positives(history)
    if not positives:
        return None
    if ids is None or any(item not in ids for item in positives):
        ids = resolve_items(sorted(positives), media)
    found = {r.id: r.payload for r in media.retrieve(sorted(set(ids.values())))}
    rows = [
        (int(found[ids[item]][INDEX_KEY]), ids[item], weight, found[ids[item]].get(weighting_key(kind)))
        for item, weight in positives.items()
        if ids[item] in found and found[ids[item]].get(INDEX_KEY) is not None
    ]
    weightings = [w for *_, w in rows if w]
    if not weightings:
        return None  # no stored model of this kind knows any of the user's items
    values = user_vector([weight for _, _, weight, _ in rows], weightings[0])
    dims = [index for index, *_ in rows]
    return UserQuery(SparseNearest(Sparse.of(dims, values), kind), {index: pid for index, pid, *_ in rows})


def contributions(query: UserQuery, column: Sparse) -> list[tuple[str, float]]:
    """The user's items behind an item's score, largest part first: ``x_uj · B[j, i]`` per item j."""
    weight = dict(zip(column.indices, column.values))
    parts = [
        (query.items[d], float(v) * float(weight[d]))
        for d, v in zip(query.spec.vector.indices, query.spec.vector.values)
        if d in weight
    ]
    return sorted(parts, key=lambda part: (-part[1], part[0]))  # ties by id, so answers repeat
