"""``embedder search``: text or an example item -> vectors -> Qdrant query -> explained hits.

With ``modality="all"`` the query runs against the fused ``content`` vector: one nearest-neighbour
search whose score is exactly the documented weighted sum of per-modality cosines, so scores are
comparable across items and queries (rank fusion would throw the magnitudes away). Per-modality
scores for each hit are computed from its stored named vectors, to explain the ranking.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedder.errors import EmbedderError
from embedder.fusion import MODALITIES, fuse_query
from embedder.store import Nearest, VectorStore, is_point_id, point_id

if TYPE_CHECKING:
    from embedder.settings import Settings

SEARCH_MODALITIES = ("all", *MODALITIES)


@dataclass
class SearchHit:
    """One result: where it is, how well it matched overall and per modality."""

    id: str
    path: str | None
    score: float
    scores: dict[str, float]  # cosine per modality the item has
    kind: str | None
    text: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def _explain(hits, query_parts: dict[str, np.ndarray]) -> list[SearchHit]:
    out = []
    for h in hits:
        if not np.isfinite(h.score):  # damaged vector files read back as garbage: never print it
            raise EmbedderError(f"the store returned a non-finite score for item {h.id}: its vectors are damaged; "
                                "restore a snapshot, or remove the item and ingest its file again")
        scores = {
            m: round(float(np.dot(h.vectors[m], query_parts[m])), 6)
            for m in MODALITIES
            if m in h.vectors and m in query_parts
        }
        out.append(
            SearchHit(
                id=h.id,
                path=h.payload.get("path"),
                score=round(h.score, 6),
                scores=scores,
                kind=h.payload.get("kind"),
                text=(h.payload.get("text") or "")[:120] or None,
            )
        )
    return out


def _check_modality(modality: str) -> None:
    if modality not in SEARCH_MODALITIES:
        raise EmbedderError(f"--modality must be one of {', '.join(SEARCH_MODALITIES)}, not '{modality}'")


def check_vector_space(store: VectorStore, model_ids: dict[str, str]) -> None:
    """Refuse to rank stored vectors of one model with query vectors of another.

    Two models of the same size (two ViT-B-32 checkpoints) give vectors Qdrant accepts but whose
    scores mean nothing. The collection's models are read from a sample of its points' provenance
    (``models`` in the payload), which costs one small read.

    Raises:
        EmbedderError: naming the modality, the collection's model and the configured one.
    """
    records, _ = store.page(limit=32)
    stored: dict[str, set[str]] = {}
    for record in records:
        for modality, model_id in (record.payload.get("models") or {}).items():
            stored.setdefault(modality, set()).add(model_id)
    for modality, ids in sorted(stored.items()):
        if modality in model_ids and model_ids[modality] not in ids:
            raise EmbedderError(
                f"collection '{store.logical or store.collection}' holds {modality} vectors of {', '.join(sorted(ids))}, "
                f"but the configured model is {model_ids[modality]}: configure the collection's models "
                "(EMBEDDER_MODELS, EMBEDDER_CLIP_MODEL, EMBEDDER_CLAP_MODEL), or rebuild it with 'embedder reembed'"
            )


def search_text(
    store: VectorStore, encoders, query: str, *, weights: dict[str, float], limit: int = 10,
    modality: str = "all", filters: dict | None = None,
) -> list[SearchHit]:
    """Find items matching a text query.

    The text is encoded into each block's space (CLIP text for frames and item text, CLAP text
    for audio) and fused like an item (:func:`embedder.fusion.fuse_query`).
    """
    _check_modality(modality)
    if not query.strip():
        raise EmbedderError("the search text is empty")
    check_vector_space(store, encoders.model_ids)
    parts = encoders.encode_query(query)
    if modality == "all":
        vector, using = fuse_query(parts, weights), "content"
    else:
        vector, using = parts[modality], modality
    hits = store.query(vector, using, limit=limit, filter=filters or None, with_vectors=True)
    return _explain(hits, parts)


def find_item(store: VectorStore, ref: str, with_vectors: bool = True):
    """An ingested item by point id or by path (a stored path first, then the file's current
    content hash); ``None`` when there is none."""
    records = store.retrieve([ref], with_vectors=with_vectors) if is_point_id(ref) else []
    if records:
        return records[0]
    path = Path(ref).expanduser()
    for record in store.scroll(filter={"paths": os.path.abspath(path)}, with_vectors=with_vectors):
        return record
    if path.is_file():
        from embedder.media.discover import hash_file

        records = store.retrieve([point_id(hash_file(path))], with_vectors=with_vectors)
        if records:
            return records[0]
    return None


def search_like(
    store: VectorStore, ref: str, settings: Settings, *, encoders=None, limit: int = 10, modality: str = "all",
    filters: dict | None = None, include_self: bool = False,
) -> list[SearchHit]:
    """Items similar to an ingested item (id or path) or to a new file, which is encoded on the fly.

    The item itself is left out, as ``embedder similar`` does; with ``include_self`` an ingested
    item finds itself first (cosine 1).
    """
    _check_modality(modality)
    record = find_item(store, ref)
    if record is not None:
        from embedder.check import point_problems

        damage = point_problems(record)
        if damage:
            raise EmbedderError(f"--like {ref}: the stored item is damaged ({damage[0]}); "
                                "'embedder check --repair' encodes it again")
        vectors = record.vectors
    else:
        if not Path(ref).expanduser().is_file():
            raise EmbedderError(f"--like {ref}: not an ingested item id and not a file")
        from embedder.encoders.bundle import configured_model_ids

        check_vector_space(store, encoders.model_ids if encoders is not None else configured_model_ids(settings))
        vectors = _embed_new_file(str(Path(ref).expanduser()), settings, encoders)
    using = "content" if modality == "all" else modality
    if using not in vectors:
        raise EmbedderError(f"--like {ref}: the item has no {using} vector to compare")
    exclude = [record.id] if record is not None and not include_self else None
    hits = store.search(Nearest(vectors[using], using), limit=limit, filter=filters or None, exclude_ids=exclude,
                        with_vectors=True)
    return _explain(hits, {m: vectors[m] for m in MODALITIES if m in vectors})


def _embed_new_file(path: str, settings: Settings, encoders) -> dict[str, np.ndarray]:
    from embedder.embedding import decode_file, embed_items
    from embedder.encoders.bundle import load_encoders

    encoders = encoders or load_encoders(settings)
    item = decode_file(path, settings, encoders)
    return embed_items([item], encoders, settings.fusion_weights, settings.batch_size)[0].named()


def collection_status(store: VectorStore) -> dict:
    """Back-end, collection, item counts per kind and modality, models and size."""
    info = store.info()
    if info["exists"]:
        info["modalities"] = {m: store.count({"modalities": m}) for m in MODALITIES}
        info["kinds"] = {k: store.count({"kind": k}) for k in ("video", "audio")}
        info["models"] = _models_in_use(store)
    return info


def _models_in_use(store: VectorStore) -> dict[str, list[str]]:
    """modality -> the model ids its stored vectors came from, counted by the engine (facets on
    indexed keys); a collection made before those keys were indexed is read through once."""
    found: dict[str, list[str]] = {}
    for modality in MODALITIES:
        counts = store.facet(f"models.{modality}")
        if counts is None:
            break
        if counts:
            found[modality] = sorted(counts)
    else:
        return found
    models: dict[str, set[str]] = {}
    for record in store.scroll():
        for modality, model in (record.payload.get("models") or {}).items():
            models.setdefault(modality, set()).add(model)
    return {m: sorted(v) for m, v in models.items()}


__all__ = ["SearchHit", "check_vector_space", "collection_status", "find_item", "search_like", "search_text"]
