"""``embedder search``: text or an example item -> vectors -> Qdrant query -> explained hits.

With ``modality="all"`` the query runs against the fused ``content`` vector: one nearest-neighbour
search whose score is exactly the documented weighted sum of per-modality cosines, so scores are
comparable across items and queries (rank fusion would throw the magnitudes away). Per-modality
scores for each hit are computed from its stored named vectors, to explain the ranking.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedder.errors import EmbedderError
from embedder.fusion import MODALITIES, block_contributions, fuse, fuse_query
from embedder.store import Nearest, VectorStore, is_point_id, point_id
from embedder.store.status import check_models

if TYPE_CHECKING:
    from embedder.settings import Settings

SEARCH_MODALITIES = ("all", *MODALITIES)


@dataclass
class Moment:
    """The segment of an item that matched best: when, how well, and what was said then."""

    segment: int  # index in the item's segments (thumbnails/<id>.moments/<segment>.jpg)
    start: float  # seconds
    end: float
    score: float  # the query against this segment's content vector: the item's score in moment search
    contributions: dict[str, float]  # per modality; they add up to ``score``
    subtitle: str | None  # the subtitle lines shown during the segment, when the file has subtitles
    thumbnail: str | None = None  # a preview of the segment (a file path; a URL through the API)


@dataclass
class SearchHit:
    """One result: where it is, how well it matched overall and per modality.

    ``scores`` are cosines per modality (query vs. the item's block); ``contributions`` are what
    each block added to ``score`` (weights included), so they add up to it; ``moment`` is the best
    segment, in moment search; ``personal`` is how the user's taste re-ranked it.
    """

    id: str
    path: str | None
    score: float
    scores: dict[str, float]  # cosine per modality the item has
    kind: str | None
    text: str | None
    contributions: dict[str, float] = field(default_factory=dict)
    moment: Moment | None = None
    personal: dict | None = None  # the re-ranking for a user (embedder.personal), in personalised search

    def to_dict(self) -> dict:
        return asdict(self)


def best_moment(segments: np.ndarray, described: list[dict], query: np.ndarray, dims: dict[str, int]) -> Moment:
    """The segment of an item (its ``segments`` multivector and payload) nearest to ``query``."""
    scores = np.asarray(segments, np.float32) @ np.asarray(query, np.float32)
    k = int(np.argmax(scores))
    about = described[k] if k < len(described) else {}
    return Moment(
        segment=k,
        start=float(about.get("start", 0.0)),
        end=float(about.get("end", 0.0)),
        score=round(float(scores[k]), 6),
        contributions=block_contributions(segments[k], query, dims),
        subtitle=about.get("subtitle"),
    )


def _explain(
    hits,
    query_parts: dict[str, np.ndarray],
    query: np.ndarray | None = None,
    dims: dict[str, int] | None = None,
    using: str = "content",
) -> list[SearchHit]:
    out = []
    for h in hits:
        scores = {
            m: round(float(np.dot(h.vectors[m], query_parts[m])), 6)
            for m in MODALITIES
            if m in h.vectors and m in query_parts
        }
        if using in MODALITIES:  # a one-block search: the block's cosine is the whole score
            contributions = {using: scores.get(using, round(h.score, 6))}
        elif query is not None and dims and "content" in h.vectors:
            contributions = block_contributions(h.vectors["content"], query, dims)
        else:
            contributions = {}
        moment = None
        if using == "segments" and "segments" in h.vectors:
            moment = best_moment(h.vectors["segments"], h.payload.get("segments") or [], query, dims)
            contributions = moment.contributions  # the hit's score is its best moment's
        out.append(
            SearchHit(
                id=h.id,
                path=h.payload.get("path"),
                score=round(h.score, 6),
                scores=scores,
                kind=h.payload.get("kind"),
                text=(h.payload.get("text") or "")[:120] or None,
                contributions=contributions,
                moment=moment,
            )
        )
    return out


def _content_dims(store: VectorStore) -> dict[str, int]:
    dims = store.collection_dims() or {}
    return {m: dims[m] for m in MODALITIES if m in dims}


def _moment_space(store: VectorStore, modality: str) -> str:
    """The named vector a moment search runs on, after checking the collection has it."""
    if modality != "all":
        raise EmbedderError("--moments searches the segments' fused vectors: use it with --modality all")
    if not store.has_vector("segments"):
        raise EmbedderError(
            f"collection '{store.logical or store.collection}' has no segment vectors (made before moments, or with "
            "segments = false): run 'embedder reembed' to rebuild it with them"
        )
    return "segments"


def _read_back(using: str) -> list[str]:
    """The named vectors a hit needs for its explanation (never every segment of every hit
    unless it is a moment search)."""
    return [*MODALITIES, "content", *(["segments"] if using == "segments" else [])]


def _check_modality(modality: str) -> None:
    if modality not in SEARCH_MODALITIES:
        raise EmbedderError(f"--modality must be one of {', '.join(SEARCH_MODALITIES)}, not '{modality}'")


def check_vector_space(store: VectorStore, model_ids: dict[str, str]) -> None:
    """Refuse to rank stored vectors of one model with query vectors of another
    (:func:`embedder.store.status.check_models`).

    Raises:
        EmbedderError: naming the modality, the collection's model and the configured one.
    """
    check_models(store, model_ids)


def search_text(
    store: VectorStore,
    encoders,
    query: str,
    *,
    weights: dict[str, float],
    limit: int = 10,
    modality: str = "all",
    filters: dict | None = None,
    moments: bool = False,
) -> list[SearchHit]:
    """Find items matching a text query.

    The text is encoded into each block's space (CLIP text for frames and item text, CLAP text
    for audio) and fused like an item (:func:`embedder.fusion.fuse_query`). With ``moments``, items
    are ranked by their best segment (MaxSim over the ``segments`` multivector), which each hit
    names with its times.
    """
    _check_modality(modality)
    if not query.strip():
        raise EmbedderError("the search text is empty")
    using = _moment_space(store, modality) if moments else ("content" if modality == "all" else modality)
    check_vector_space(store, encoders.model_ids)
    parts = encoders.encode_query(query)
    fused = fuse_query(parts, weights)
    vector = fused if modality == "all" else parts[modality]
    hits = store.search(Nearest(vector, using), limit=limit, filter=filters or None, with_vectors=_read_back(using))
    return _explain(hits, parts, fused, _content_dims(store), using)


def find_item(store: VectorStore, ref: str, with_vectors: bool | list[str] = True):
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
    store: VectorStore,
    ref: str,
    settings: Settings,
    *,
    encoders=None,
    limit: int = 10,
    modality: str = "all",
    filters: dict | None = None,
    include_self: bool = False,
    moments: bool = False,
) -> list[SearchHit]:
    """Items similar to an ingested item (id or path) or to a new file, which is encoded on the fly.

    The item itself is left out, as ``embedder similar`` does; with ``include_self`` an ingested
    item finds itself first (cosine 1). With ``moments``, the example's content vector is matched
    against every segment: a short clip finds where it occurs inside longer videos.
    """
    _check_modality(modality)
    if moments:
        _moment_space(store, modality)
    record = find_item(store, ref, with_vectors=[*MODALITIES, "content"])
    if record is not None:  # its vectors were checked as they were read (embedder.store.integrity)
        vectors = record.vectors
        text_source = record.payload.get("text_source")
    else:
        if not Path(ref).expanduser().is_file():
            raise EmbedderError(f"--like {ref}: not an ingested item id and not a file")
        from embedder.encoders.bundle import configured_model_ids

        check_vector_space(store, encoders.model_ids if encoders is not None else configured_model_ids(settings))
        vectors, text_source = _embed_new_file(str(Path(ref).expanduser()), settings, encoders)
    source = "content" if modality == "all" else modality
    if source not in vectors:
        raise EmbedderError(f"--like {ref}: the item has no {source} vector to compare")
    dims = _content_dims(store)
    query = vectors.get("content")
    if moments:
        query = clip_query(vectors, text_source, dims, settings.fusion_weights)
    using = "segments" if moments else source
    exclude = [record.id] if record is not None and not include_self else None
    hits = store.search(
        Nearest(query if moments else vectors[source], using),
        limit=limit,
        filter=filters or None,
        exclude_ids=exclude,
        with_vectors=_read_back(using),
    )
    return _explain(hits, {m: vectors[m] for m in MODALITIES if m in vectors}, query, dims, using)


def clip_query(
    vectors: dict[str, np.ndarray], text_source: str | None, dims: dict[str, int], weights: dict[str, float]
) -> np.ndarray:
    """The content-space query that finds where an example clip occurs: its picture and sound, and
    its text only when that is subtitles (what is said in the clip is said in the video too; its
    file name or title is not), fused with the weights renormalised over those blocks."""
    keep = ["visual", "audio"] + (["text"] if text_source in ("subtitles", "embedded-subtitles") else [])
    blocks = {m: vectors.get(m) for m in keep if vectors.get(m) is not None}
    if not blocks:
        blocks = {"text": vectors["text"]}
    return fuse(blocks, dims, weights)


def _embed_new_file(path: str, settings: Settings, encoders) -> tuple[dict[str, np.ndarray], str]:
    """A file's vectors (without segments: it is the example, not a place to search) and where
    its text came from."""
    from embedder.embedding import decode_file, embed_items
    from embedder.encoders.bundle import load_encoders

    encoders = encoders or load_encoders(settings)
    item = decode_file(path, settings.model_copy(update={"segments": False}), encoders)
    return embed_items([item], encoders, settings.fusion_weights, settings.batch_size)[0].named(), item.text.source


__all__ = ["Moment", "SearchHit", "best_moment", "check_vector_space", "find_item", "search_like", "search_text"]
