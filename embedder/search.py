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
from embedder.store import Nearest, SparseNearest, VectorStore, is_point_id, point_id
from embedder.store.base import LEXICAL, RRF_K, SEARCH_TEXT, AllOf, Phrase
from embedder.store.status import check_models

if TYPE_CHECKING:
    from embedder.settings import Settings

SEARCH_MODALITIES = ("all", *MODALITIES)
# How a text query ranks: "hybrid" fuses the dense (encoder) and lexical (BM25) lists in the
# engine, "dense" and "lexical" use one of them; "auto" is hybrid where the collection has a
# lexical index and dense elsewhere.
SEARCH_MODES = ("auto", "hybrid", "dense", "lexical")
FUSIONS = ("rrf", "dbsf")  # reciprocal rank fusion; distribution-based score fusion
BRANCH_DEPTH = 4  # each fused branch prefetches this many times the results asked for...
MIN_BRANCH = 50  # ...and at least this many


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
    said: str | None = None  # the line whose words matched, when the moment was found by them


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
    item: str | None = None  # the interaction log's / catalogue's key, for items that have one
    title: str | None = None  # a catalogue item's title (media files are known by their path)
    cluster: str | None = None  # the item it is a near-duplicate of ('embedder duplicates --mark'), if any
    mode: str = "dense"  # how it was ranked: dense, lexical or hybrid
    # Where the query's words matched (title, text, subtitle or transcript lines with their times):
    # embedder.lexical.Match dicts, for lexical and hybrid search.
    matches: list[dict] = field(default_factory=list)
    # What each side gave: {"dense": cosine or None, "lexical": BM25 score or None}, and in hybrid
    # search "fused": what each side added to ``score`` ({"dense": .., "lexical": ..}, summing to it).
    sides: dict = field(default_factory=dict)

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
                item=h.payload.get("item"),
                cluster=h.payload.get("duplicate_of"),
                title=(h.payload.get("words") or {}).get("title") if not h.payload.get("path") else None,
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


def search_mode(store: VectorStore, mode: str, modality: str = "all") -> str:
    """The mode a text search runs in: ``auto`` is hybrid where the collection has a lexical index
    (and the search is over the fused content), else dense.

    Raises:
        EmbedderError: an unknown mode, or lexical/hybrid on a collection without a lexical index.
    """
    if mode not in SEARCH_MODES:
        raise EmbedderError(f"--mode must be one of {', '.join(SEARCH_MODES)}, not '{mode}'")
    has_lexical = LEXICAL in store.sparse_names()
    if mode == "auto":
        return "hybrid" if has_lexical and modality == "all" else "dense"
    if mode != "dense" and not has_lexical:
        raise EmbedderError(
            f"collection '{store.logical or store.collection}' has no lexical index (made before lexical search, "
            "on a server that would not add one): use --mode dense, or rebuild it with 'embedder reembed'"
        )
    return mode


def with_phrases(filters: dict | None, query: str, store: VectorStore) -> dict | None:
    """``filters`` plus one condition per quoted phrase of ``query`` (the words in that order,
    through the full-text index), where the collection has the index."""
    from embedder.lexical import phrases

    found = phrases(query)
    if not found or LEXICAL not in store.sparse_names():
        return filters or None
    conditions = [Phrase(p) for p in found]  # SEARCH_TEXT is not a --filter key: nothing to merge with
    return {**(filters or {}), SEARCH_TEXT: conditions[0] if len(conditions) == 1 else AllOf(tuple(conditions))}


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
    mode: str = "auto",
    fusion: str = "rrf",
    language: str = "english",
    diversity: float | None = None,
) -> list[SearchHit]:
    """Find items matching a text query.

    Dense: the text is encoded into each block's space (CLIP text for frames and item text, CLAP
    text for audio) and fused like an item (:func:`embedder.fusion.fuse_query`). Lexical: BM25 over
    the item's words (:mod:`embedder.lexical`). Hybrid: both lists fused in the engine (``fusion``
    ``rrf`` or ``dbsf``). Quoted phrases must occur as phrases, in every mode. With ``moments``,
    items are ranked by their best segment (MaxSim over the ``segments`` multivector), and a hit
    whose words matched a timed line (subtitle or transcript) names that moment. ``encoders`` may
    be ``None`` in lexical mode. ``diversity`` (0 to 1, dense search of whole items) re-ranks by
    maximal marginal relevance in the engine; each hit's ``score`` stays its cosine.
    """
    from embedder.lexical import matches, query_vector

    _check_modality(modality)
    if fusion not in FUSIONS:
        raise EmbedderError(f"--fusion must be one of {', '.join(FUSIONS)}, not '{fusion}'")
    if not query.strip().strip('"').strip():
        raise EmbedderError("the search text is empty")
    if diversity:
        if not 0 < diversity <= 1:
            raise EmbedderError(f"--diversity must be between 0 and 1, not {diversity:g}")
        if moments:
            raise EmbedderError("--diversity re-ranks whole items; it does not combine with --moments")
        if mode not in ("auto", "dense"):
            raise EmbedderError(f"--diversity re-ranks the dense side; use it with --mode dense, not {mode}")
        mode = "dense"
    mode = search_mode(store, mode, modality)
    filters = with_phrases(filters, query, store)
    words = query.replace('"', " ")
    sparse = query_vector(words, language) if mode != "dense" else None
    if sparse is None and mode == "lexical":
        raise EmbedderError(f"'{query}' has no searchable words (only stop words of {language}); try --mode dense")
    if sparse is None and mode == "hybrid":
        mode = "dense"  # nothing for BM25 to match: the dense side alone
    if mode == "lexical":
        hits = store.search(SparseNearest(sparse, LEXICAL), limit=limit, filter=filters)
        out = _explain(hits, {}, None, None, LEXICAL)
        for hit, raw in zip(out, hits):
            hit.sides = {"dense": None, "lexical": round(raw.score, 6)}
    else:
        using = _moment_space(store, modality) if moments else ("content" if modality == "all" else modality)
        check_vector_space(store, encoders.model_ids)
        parts = encoders.encode_query(words)
        fused = fuse_query(parts, weights)
        vector = fused if modality == "all" else parts[modality]
        dense = Nearest(vector, using, diversity=diversity, candidates=max(limit * BRANCH_DEPTH, 100))
        if mode == "dense":
            hits = store.search(dense, limit=limit, filter=filters, with_vectors=_read_back(using))
        else:
            depth = max(limit * BRANCH_DEPTH, MIN_BRANCH)
            branches = [(dense, depth), (SparseNearest(sparse, LEXICAL), depth)]
            hits = store.fused(branches, limit, filter=filters, method=fusion, with_vectors=_read_back(using))
        out = _explain(hits, parts, fused, _content_dims(store), using)
        if mode == "hybrid":
            lexical_list = store.search(SparseNearest(sparse, LEXICAL), limit=depth, filter=filters)
            _split_fused(out, lexical_list, fusion)
        else:
            for hit in out:
                hit.sides = {"dense": _dense_score(hit), "lexical": None}
                if diversity:  # the engine's score was the MMR trade-off; show the relevance
                    hit.score = hit.sides["dense"]
    for hit, raw in zip(out, hits):
        hit.mode = mode
        if mode != "dense":
            found = matches(raw.payload, words, language)
            hit.matches = [m.to_dict() for m in found]
            if moments:
                _moment_from_words(hit, raw.payload, found)
    return out


def _dense_score(hit: SearchHit) -> float | None:
    """The dense side's score of a hit: its best moment's, or the sum of its block contributions."""
    if hit.moment is not None:
        return hit.moment.score
    return round(sum(hit.contributions.values()), 6) if hit.contributions else None


def _split_fused(hits: list[SearchHit], lexical_list, fusion: str) -> None:
    """What each side added to each fused score, from the lexical list alone (the engine fused
    both lists; the lexical one is cheap to ask for again, and the dense side is the rest).

    RRF adds ``1 / (RRF_K + rank)`` per list a hit is in (rank from 0); DBSF adds each list's
    score normalised to [0, 1] by its mean +- 3 standard deviations.
    """
    rank = {h.id: i for i, h in enumerate(lexical_list)}
    scores = {h.id: h.score for h in lexical_list}
    if fusion == "dbsf" and lexical_list:
        values = np.array([h.score for h in lexical_list], np.float64)
        low, high = values.mean() - 3 * values.std(), values.mean() + 3 * values.std()
        span = max(high - low, 1e-12)
    for hit in hits:
        if hit.id not in rank:
            share = 0.0
        elif fusion == "dbsf":
            share = float(np.clip((scores[hit.id] - low) / span, 0.0, 1.0))
        else:
            share = 1.0 / (RRF_K + rank[hit.id])
        share = min(share, hit.score)
        hit.sides = {
            "dense": _dense_score(hit),
            "lexical": round(scores[hit.id], 6) if hit.id in scores else None,
            "fused": {"dense": round(hit.score - share, 6), "lexical": round(share, 6)},
        }


def _moment_from_words(hit: SearchHit, payload: dict, found) -> None:
    """Point a hit's moment at the first timed line its words matched (the segment holding it,
    when the item has segments), since what is said is where the query is."""
    timed = next((m for m in found if m.start is not None), None)
    if timed is None:
        return
    segments = payload.get("segments") or []
    k = next((i for i, s in enumerate(segments) if s.get("start", 0) <= timed.start < s.get("end", 0)), None)
    if hit.moment is not None and k is not None and k != hit.moment.segment:
        about = segments[k]
        hit.moment = Moment(
            segment=k,
            start=float(about["start"]),
            end=float(about["end"]),
            score=hit.moment.score,
            contributions={},
            subtitle=about.get("subtitle"),
        )
    elif hit.moment is None:
        hit.moment = Moment(
            segment=k if k is not None else -1,
            start=float(timed.start),
            end=float(timed.end),
            score=hit.score,
            contributions={},
            subtitle=timed.text if timed.where == "subtitle" else None,
        )
    hit.moment.said = timed.text


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


def hit_label(hit: SearchHit) -> str:
    """What a person calls a hit: its path, else its catalogue key and title, else its id."""
    if hit.path:
        return hit.path
    if hit.item:
        return f"{hit.item}: {hit.title}" if hit.title else hit.item
    return hit.id


__all__ = [
    "FUSIONS",
    "hit_label",
    "SEARCH_MODES",
    "Moment",
    "SearchHit",
    "best_moment",
    "check_vector_space",
    "find_item",
    "search_like",
    "search_mode",
    "search_text",
]
