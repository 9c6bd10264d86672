"""The store interface every other module uses; it knows no back-end (the factory chooses one)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from embedder.ids import is_point_id, point_id  # noqa: F401  (re-exported by embedder.store)

if TYPE_CHECKING:
    from embedder.settings import Settings

# Point ids are UUIDv5 of the content hash: the same bytes always map to the same point.
INDEXED_FIELDS = (
    "paths",
    "dirs",
    "sha256",
    "kind",
    "modalities",
    "item",
    "user",
    "models.visual",
    "models.audio",
    "models.text",
)
NUMERIC_INDEXED_FIELDS = ("popularity",)
# Collaborative-filtering factors score by dot product (what ALS optimises); all else by cosine.
VECTOR_DISTANCES = {"cf": "dot", "rec": "dot"}  # "cf_sim" holds the same factors under cosine, for item-to-item
RRF_K = 60  # the usual reciprocal-rank-fusion constant, for every back-end
# Named vectors that hold several vectors per point, scored by MaxSim (the best of them for a
# one-vector query): "segments", one fused content vector per moment of an item.
MULTIVECTORS = ("segments",)
# Sparse named vectors (dot product): the item-to-item models' weights (embedder.recommend.itemitem).
# A Qdrant server collection gets them when it is made (a server may refuse to add one later);
# an embedded one when a model is first written.
SPARSE_VECTORS = ("ease", "rp3beta", "itemknn")
# Sparse named vectors whose query weights the engine multiplies by each dimension's inverse
# document frequency over the collection: "lexical", the BM25 term weights of an item's words
# (embedder.lexical). Media collections get it when they are made, older ones when first written.
LEXICAL = "lexical"
IDF_SPARSE_VECTORS = (LEXICAL,)
# The payload key holding an item's words as one text, under a full-text index with phrase
# matching (stemmed and stop-worded in the store's text language), for quoted phrases.
SEARCH_TEXT = "search_text"


def is_media_schema(dims: dict[str, int]) -> bool:
    """Whether a collection of these dense vectors holds media items (which get lexical search),
    rather than users."""
    return "content" in dims


# Named vectors a collection may lack (made before they existed, or with them turned off); the
# features that need them say so instead of refusing the collection.
OPTIONAL_VECTORS = ("segments",)


@dataclass
class PointRecord:
    """A point as stored: id, named vectors (possibly a subset) and payload."""

    id: str
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    """A scored query result."""

    id: str
    score: float
    payload: dict[str, Any]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Range:
    """A numeric range on a payload key; ``None`` bounds are open."""

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class AllOf:
    """Several conditions on one payload key that must all hold (a key given twice)."""

    conditions: tuple


# Payload key -> a value (equality), a list of values (any of them), a Range, a Phrase, or AllOf those.
Filter = dict[str, Any]


def filter_conditions(filter: Filter | None) -> Iterator[tuple[str, str, Any]]:
    """A filter as ``(key, kind, value)`` conditions, kind ``match``, ``any``, ``range`` or
    ``phrase``, all to hold together. Each back-end turns these into its own condition objects."""
    for key, value in (filter or {}).items():
        for cond in value.conditions if isinstance(value, AllOf) else (value,):
            if isinstance(cond, Range):
                yield key, "range", cond
            elif isinstance(cond, Phrase):
                yield key, "phrase", cond.text
            elif isinstance(cond, (list, tuple, set)):
                yield key, "any", list(cond)
            else:
                yield key, "match", cond


@dataclass(frozen=True)
class Phrase:
    """A condition on a full-text indexed payload key: its text holds these words in this order
    (after the engine's tokenizer, stemmer and stop words)."""

    text: str


@dataclass
class Nearest:
    """Nearest neighbours of one vector in the named vector ``using``.

    ``lacking`` restricts the query to points without that named vector (e.g. items with no
    ``cf`` vector: media nobody has interacted with yet). ``diversity`` (0 to 1) re-ranks the
    nearest ``candidates`` by maximal marginal relevance in the engine: each next hit trades its
    similarity to the query against its similarity to the hits already chosen.
    """

    vector: np.ndarray
    using: str
    lacking: str | None = None
    diversity: float | None = None
    candidates: int = 100


@dataclass
class Recommend:
    """Qdrant's recommend query (best-score strategy): near the positives, away from the negatives."""

    positives: list[np.ndarray]
    negatives: list[np.ndarray]
    using: str
    lacking: str | None = None


@dataclass(frozen=True)
class Sparse:
    """A sparse vector: non-zero ``values`` at dimensions ``indices`` (item indices, for the
    item-to-item models of :mod:`embedder.recommend.itemitem`)."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, indices, values) -> Sparse:
        """From any sequences (numpy arrays included); indices as ints, values as floats."""
        return cls(tuple(int(i) for i in indices), tuple(float(v) for v in values))

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class SparseNearest:
    """The points whose sparse vector ``using`` has the largest dot product with ``vector``.

    Qdrant scores only points that share a dimension with the query; ``lacking`` is as for
    :class:`Nearest`.
    """

    vector: Sparse
    using: str
    lacking: str | None = None


QuerySpec = Nearest | Recommend | SparseNearest


class VectorStore(ABC):
    """A named-vector collection with payloads. Implementations must behave identically."""

    backend: str = "?"
    logical: str | None = None  # the alias this store was opened by, if any
    text_language: str = "english"  # the stemmer and stop words of the full-text index (settings)
    on_create = None  # called once after ensure_collection created the collection

    @abstractmethod
    def ensure_collection(self, dims: dict[str, int]) -> None:
        """Create the collection with these named vectors, or check that it matches them."""

    @abstractmethod
    def collection_dims(self) -> dict[str, int] | None:
        """Named vector sizes of the existing collection, or ``None`` if there is none."""

    @abstractmethod
    def upsert(self, points: list[PointRecord]) -> None:
        """Insert or replace points (all named vectors given replace the stored ones)."""

    @abstractmethod
    def set_payload(self, ids: list[str], payload: dict[str, Any]) -> None:
        """Merge ``payload`` keys into the points' payloads."""

    @abstractmethod
    def delete(self, ids: list[str]) -> None:
        """Remove points; unknown ids are ignored."""

    @abstractmethod
    def retrieve(self, ids: list[str], with_vectors: bool = False) -> list[PointRecord]:
        """Points by id (missing ids are left out). Every read that returns vectors, and every
        query, checks what the engine gave (:mod:`embedder.store.integrity`): damage raises
        ``DamagedStoreError``, never reaches an answer."""

    @abstractmethod
    def scroll(
        self, filter: Filter | None = None, with_vectors: bool = False, batch: int = 256
    ) -> Iterator[PointRecord]:
        """Every point matching ``filter``."""

    @abstractmethod
    def page(
        self, offset=None, limit: int = 256, with_vectors: bool = False, raw: bool = False
    ) -> tuple[list[PointRecord], object]:
        """One page of points in id order and the offset of the next page (``None`` at the end).

        Vectors are checked as every read's are (:mod:`embedder.store.integrity`) unless ``raw``:
        ``embedder check`` reads them as stored, to report the damage itself.
        """

    @abstractmethod
    def facet(self, key: str, limit: int = 100) -> dict[str, int] | None:
        """Points per value of an indexed keyword ``key``, counted by the engine; ``None`` when the
        back-end or the collection cannot (no index on that key)."""

    def ensure_indexes(self) -> None:  # noqa: B027 (a no-op unless the back-end has indexes to add)
        """Create the payload indexes a collection made by an older version lacks (idempotent)."""

    @abstractmethod
    def count(self, filter: Filter | None = None) -> int:
        """How many points match ``filter``."""

    @abstractmethod
    def update_vectors(self, vectors: dict[str, dict[str, np.ndarray]]) -> None:
        """Set some named vectors of existing points, keeping their other vectors and payload."""

    @abstractmethod
    def sparse_names(self) -> set[str]:
        """The collection's sparse named vectors (empty when there is no collection)."""

    @abstractmethod
    def ensure_sparse(self, name: str) -> None:
        """Add the sparse named vector ``name`` (dot product) to the existing collection, if missing.

        Raises:
            StoreError: the collection does not exist, or the back-end cannot add one to it.
        """

    @abstractmethod
    def delete_vectors(self, ids: list[str], names: list[str]) -> None:
        """Remove the named vectors ``names`` from the points ``ids``, keeping the points."""

    @abstractmethod
    def search(
        self,
        spec: QuerySpec,
        limit: int = 10,
        filter: Filter | None = None,
        exclude_ids: list[str] | None = None,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """Run one nearest or recommend query."""

    @abstractmethod
    def fused(
        self,
        branches: list[tuple[QuerySpec, int]],
        limit: int = 10,
        filter: Filter | None = None,
        exclude_ids: list[str] | None = None,
        weights: list[float] | None = None,
        method: str = "rrf",
        with_vectors: bool | list[str] = False,
        rrf_k: int = RRF_K,
    ) -> list[Hit]:
        """Prefetch each ``(spec, branch_limit)`` and fuse the lists in the engine: ``rrf``
        (reciprocal rank fusion with constant ``rrf_k``; per-branch ``weights`` scale a branch's
        positions, Qdrant's ``1 / ((position + 1) / w + k - 1)``, so they matter most at a small
        k) or ``dbsf`` (distribution-based score fusion: each branch's scores normalised by their
        mean and 3 standard deviations, then added; no weights)."""

    @abstractmethod
    def top_by(
        self, key: str, limit: int = 10, filter: Filter | None = None, exclude_ids: list[str] | None = None
    ) -> list[Hit]:
        """Points with the largest numeric payload ``key`` (score = that value), in Qdrant's order_by."""

    def merge(self, points: list[PointRecord], batch: int = 1000, new_payload: dict | None = None) -> tuple[int, int]:
        """Add vectors and payload keys to points, creating the points that do not exist yet.

        Existing points keep their other vectors and payload (an upsert would replace them);
        ``new_payload`` goes only to the points created. Returns (updated, created).
        """
        existing = set()
        for start in range(0, len(points), batch):
            existing |= {r.id for r in self.retrieve([p.id for p in points[start : start + batch]])}
        old = [p for p in points if p.id in existing]
        new = [
            PointRecord(p.id, p.vectors, {**(new_payload or {}), **p.payload}) for p in points if p.id not in existing
        ]
        for start in range(0, len(new), batch):
            self.upsert(new[start : start + batch])
        for start in range(0, len(old), batch):
            self.update_vectors({p.id: p.vectors for p in old[start : start + batch]})
        for p in old:
            self.set_payload([p.id], p.payload)
        return len(old), len(new)

    def has_vector(self, name: str) -> bool:
        """Whether the collection has the named vector ``name`` (an optional one may be missing),
        dense or sparse."""
        return name in (self.collection_dims() or {}) or name in self.sparse_names()

    def pause(self) -> None:  # noqa: B027 (a hook: only an embedded back-end has a lock to let go)
        """Let other processes use the collection until the next call (a no-op where the back-end
        serves many processes at once, as a Qdrant server does)."""

    def forget_reads(self) -> None:  # noqa: B027 (a hook: only an embedded back-end keeps answers)
        """Drop answers kept from earlier reads, so the next reads ask the engine (a no-op where
        nothing is kept, as on a Qdrant server)."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Back-end, location (never secrets), collection and size facts."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def users_collection(settings: Settings) -> str:
    """The collection of user vectors that goes with ``settings.collection``."""
    return f"{settings.collection}_users"


def check_dims(existing: dict[str, int], wanted: dict[str, int], where: str) -> None:
    """Refuse to mix vectors of different sizes (other models) in one collection."""
    from embedder.errors import StoreError

    def required(dims: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in dims.items() if k not in OPTIONAL_VECTORS}

    clash = [k for k in OPTIONAL_VECTORS if k in existing and k in wanted and existing[k] != wanted[k]]
    if required(existing) != required(wanted) or clash:
        raise StoreError(
            f"{where} holds vectors of sizes {existing}, but the current models produce {wanted}; "
            "use another --collection, or the models the collection was built with"
        )
