"""The hybrid strategy: a collaborative model and a content side, fused in one Qdrant query.

Which collaborative model (``base``: ALS ``cf``, or the item-to-item ``ease``, ``rp3beta``,
``itemknn``), which content side (``content``: the items' dense content vectors, like the user's
recent positives; ``words``: BM25 over the items' words, title, tags, genres, transcript, like the
words of the user's positives), how they are fused (``rrf``, weighted reciprocal rank fusion, or
``dbsf``, distribution-based score fusion) and how much the content side weighs are
:class:`HybridParams`. ``eval --tune`` chooses them on a validation split (:func:`tune_hybrid`,
scored by :func:`embedder.recommend.hybrid_tuning.tune_hybrid_on_validation`), with a content
weight of 0 among the candidates: a hybrid that cannot add falls back to its collaborative model
instead of averaging it down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from embedder.errors import EmbedderError
from embedder.store.base import LEXICAL, Sparse, SparseNearest

COLLABORATIVE = ("cf", "ease", "rp3beta", "itemknn")
CONTENT_SIDES = ("content", "words")
FUSIONS = ("rrf", "dbsf")
WORDS_BRANCH = "words"
WORDS_POSITIVES = 50  # the newest positives whose words make the query
WORDS_TERMS = 256  # the heaviest terms of their sum: a query of bounded size
# What tune_hybrid tries: RRF at the usual k = 60 with equal weights, and at k = 2 (Qdrant's default)
# with each content weight (weights scale a branch's positions, which only shows at a small k); DBSF
# (which has no weights); and weight 0, the collaborative model alone.
RRF_WEIGHTS = (0.1, 0.25, 0.5, 1.0, 2.0)
SMALL_RRF_K = 2


@dataclass(frozen=True)
class HybridParams:
    """How the hybrid strategy fuses: see the module docstring."""

    base: str = "cf"
    content: str = "content"
    fusion: str = "rrf"
    content_weight: float = 1.0
    rrf_k: int = 60  # RRF's constant: weights scale positions, so they count most at a small k

    def __post_init__(self):
        for name, value, allowed in (
            ("hybrid_base", self.base, COLLABORATIVE),
            ("hybrid_content", self.content, CONTENT_SIDES),
            ("hybrid_fusion", self.fusion, FUSIONS),
        ):
            if value not in allowed:
                raise EmbedderError(f"{name} must be one of {', '.join(allowed)}, not '{value}'")
        if not self.content_weight >= 0:
            raise EmbedderError(f"hybrid_content_weight must be 0 or more, not {self.content_weight}")
        if self.rrf_k < 1:
            raise EmbedderError(f"hybrid_rrf_k must be 1 or more, not {self.rrf_k}")
        if self.fusion == "dbsf" and self.content_weight not in (0.0, 1.0):
            raise EmbedderError(
                "Qdrant's dbsf fusion has no per-branch weights: use hybrid_fusion=rrf to weigh the content "
                "side, or hybrid_content_weight=1"
            )

    @property
    def branches(self) -> tuple[str, ...]:
        """The branches the strategy runs, the collaborative one first; weight 0 runs it alone."""
        return (self.base, self.content) if self.content_weight else (self.base,)

    def weight(self, branch: str) -> float:
        """A branch's weight in the fusion (the collaborative branch weighs 1)."""
        return 1.0 if branch == self.base else self.content_weight

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_settings(cls, settings, served: dict | None = None) -> HybridParams:
        """The ``hybrid_*`` settings given, else what ``interactions train --auto`` tuned and
        recorded (``served``, its record; ``hybrid``), else the defaults. Base ``auto`` is the
        collaborative model it chose, or ALS before it has chosen one.

        Raises:
            EmbedderError: settings that do not go together (dbsf with a weight other than 0 or 1).
        """
        tuned = (served or {}).get("hybrid") or {}
        chosen = {}
        for field in ("base", "content", "fusion", "content_weight", "rrf_k"):
            # A setting given (environment, config file, keyword) wins over what tuning recorded.
            given = f"hybrid_{field}" in settings.model_fields_set
            chosen[field] = getattr(settings, f"hybrid_{field}") if given or field not in tuned else tuned[field]
        if chosen["base"] == "auto":
            strategy = (served or {}).get("strategy")
            chosen["base"] = tuned.get("base") or (strategy if strategy in COLLABORATIVE else "cf")
        return cls(**chosen)


def words_query(media, positives: list[str]) -> SparseNearest | None:
    """The words of the user's newest positives as one BM25 query on the items' ``lexical``
    vectors: each positive's term weights scaled to unit length (a long description does not
    outweigh a title), summed, and the heaviest :data:`WORDS_TERMS` kept. The engine applies the
    IDF, so rare shared words (a genre few items have, a name) count most. ``None`` when no
    positive has words."""
    import numpy as np

    totals: dict[int, float] = {}
    for record in media.retrieve(positives[:WORDS_POSITIVES], with_vectors=[LEXICAL]):
        vector = record.vectors.get(LEXICAL)
        if not isinstance(vector, Sparse) or not len(vector):
            continue
        values = np.asarray(vector.values, dtype=np.float64)
        values /= np.linalg.norm(values) or 1.0
        for index, value in zip(vector.indices, values):
            totals[index] = totals.get(index, 0.0) + float(value)
    if not totals:
        return None
    top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:WORDS_TERMS]
    return SparseNearest(Sparse.of([i for i, _ in top], [v for _, v in top]), LEXICAL)


def new_items_spec(spec, base_vector: str):
    """The content side's query restricted to items without the collaborative model's vector:
    media nobody has interacted with yet, ranked among themselves, so that the best of them
    compete on equal terms instead of trailing every item the collaborative branch scores."""
    return replace(spec, lacking=base_vector)


def tune_hybrid(score: Callable[[HybridParams], float], base: HybridParams, sides: tuple[str, ...]) -> dict:
    """The collaborative model alone, then for each content side in ``sides`` (those the items
    have) RRF at k = 60, RRF at k = 2 with each of :data:`RRF_WEIGHTS`, and DBSF, each scored by
    ``score`` (validation NDCG@10); the best first. Ties go to the smaller content weight, then
    RRF: the simpler answer.

    Returns:
        ``{"chosen": HybridParams, "trials": [{..params, "val_ndcg@10"}], "base_alone": score at
        weight 0, "adds": whether the chosen fusion beats the collaborative model alone}``.
    """
    if not sides:
        raise EmbedderError("the items have neither content vectors nor words, so hybrid has no content side")
    grid = [(sides[0], "rrf", 0.0, base.rrf_k)]  # weight 0: the collaborative model alone, whatever the side
    for side in sides:
        grid.append((side, "rrf", 1.0, 60))
        grid += [(side, "rrf", w, SMALL_RRF_K) for w in RRF_WEIGHTS]
        grid.append((side, "dbsf", 1.0, base.rrf_k))
    trials = []
    for content, fusion, weight, k in grid:
        params = replace(base, content=content, fusion=fusion, content_weight=weight, rrf_k=k)
        trials.append({**params.to_dict(), "val_ndcg@10": round(float(score(params)), 5)})
    alone = trials[0]["val_ndcg@10"]
    trials.sort(key=lambda t: (-t["val_ndcg@10"], t["content_weight"], FUSIONS.index(t["fusion"])))
    best = trials[0]
    chosen = HybridParams(**{k: best[k] for k in ("base", "content", "fusion", "content_weight", "rrf_k")})
    return {"chosen": chosen, "trials": trials, "base_alone": alone, "adds": best["val_ndcg@10"] > alone}


def sides_available(vectors: dict[str, dict]) -> tuple[str, ...]:
    """The content sides the items support: ``content`` where they have content vectors,
    ``words`` where some have words."""
    sides = ("content",) if vectors else ()
    return sides + (("words",) if any(LEXICAL in v for v in vectors.values()) else ())


__all__ = [
    "COLLABORATIVE",
    "CONTENT_SIDES",
    "FUSIONS",
    "RRF_WEIGHTS",
    "SMALL_RRF_K",
    "HybridParams",
    "WORDS_BRANCH",
    "new_items_spec",
    "sides_available",
    "tune_hybrid",
    "words_query",
]
