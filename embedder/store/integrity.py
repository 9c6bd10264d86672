"""What the engine returns is checked before anyone answers with it.

Qdrant Edge does not verify its files when it opens them, so random bytes in a vector file read
back as numbers: a cosine of 1.29e37, a ``nan`` in a table, a user vector of norm 1e36. Every
read of vectors and every query result of both back-ends passes through here, and a value that a
sound collection cannot hold stops the command with :class:`DamagedStoreError`, one line that
names the collection and what to do next.

What a sound collection can hold:

- cosine vectors (every named vector but ``cf`` and ``rec``) are stored normalised: length 1, or
  below :data:`ENGINE_UNNORMALISED`, which the engine stores as given;
- a cosine query's score is a cosine: within [-1, 1]; a recommend query's best score is
  squashed into the same interval; a MaxSim score is the best of cosines;
- dot-product vectors (collaborative factors, the trained head's vectors) are finite and far
  below :data:`DOT_NORM_LIMIT`, so a dot score is at most the query's length times that limit;
- sparse vectors (item-to-item weights) are finite and each weight is far below
  :data:`DOT_NORM_LIMIT` (EASE, RP3beta and cosine weights are of order 1), so a sparse score is
  at most the sum of the query's magnitudes times that limit;
- reciprocal-rank-fusion scores are positive and at most the sum of the branch weights over
  ``RRF_K``.

All of these with a small tolerance for float32 rounding.
"""

from __future__ import annotations

import numpy as np

from embedder.errors import StoreError
from embedder.store.base import (
    MULTIVECTORS,
    RRF_K,
    VECTOR_DISTANCES,
    Hit,
    Nearest,
    PointRecord,
    QuerySpec,
    Sparse,
    SparseNearest,
)

UNIT_TOLERANCE = 1e-3
# Qdrant normalises a cosine vector on write unless its squared length is below float32's epsilon,
# which it stores as given: a sound collection made before embedder normalised such vectors itself
# (ALS factors of an item few users touched) can hold them.
ENGINE_UNNORMALISED = float(np.sqrt(np.finfo(np.float32).eps))
# No trained factor comes near this length (ALS and head vectors are of order 1 to 10); random
# bytes read as float32 exceed it with near certainty (their exponents are spread to 1e38).
DOT_NORM_LIMIT = 1e4
NEXT_STEP = (
    "run 'embedder check' to find the damaged points ('--repair' encodes them again), or "
    "'embedder snapshot restore' to go back to a snapshot"
)


class DamagedStoreError(StoreError):
    """The store returned a value no sound collection holds."""


def damaged(collection: str, what: str) -> DamagedStoreError:
    """The one-line error for damage found in ``collection``."""
    return DamagedStoreError(f"collection '{collection}' is damaged: {what}; {NEXT_STEP}")


def is_cosine(name: str) -> bool:
    """Whether the named vector is compared by cosine (stored normalised)."""
    return VECTOR_DISTANCES.get(name, "cosine") == "cosine"


def vector_problem(name: str, vector) -> str | None:
    """What is wrong with one stored named vector (a multivector is one vector per row), or None."""
    if isinstance(vector, Sparse):
        weights = np.asarray(vector.values, np.float64)
        if not np.all(np.isfinite(weights)):
            return f"{name} sparse vector holds non-finite numbers"
        if weights.size and float(np.abs(weights).max()) > DOT_NORM_LIMIT:
            return f"{name} sparse vector has a weight of {float(np.abs(weights).max()):.4g}, far beyond any model's"
        return None
    values = np.asarray(vector, np.float64)  # float64: garbage values would overflow a float32 norm
    if not np.all(np.isfinite(values)):
        return f"{name} vector holds non-finite numbers"
    norms = np.linalg.norm(values, axis=-1).reshape(-1)
    if not norms.size:
        return None
    if is_cosine(name):
        unnormalised = norms <= ENGINE_UNNORMALISED * (1 + UNIT_TOLERANCE)
        if np.all(unnormalised):
            return None
        norms = norms[~unnormalised]
        worst = float(norms[np.argmax(np.abs(norms - 1))])
        if abs(worst - 1) > UNIT_TOLERANCE:
            return f"{name} vector has length {worst:.4g}, not 1"
    elif float(norms.max()) > DOT_NORM_LIMIT:
        return f"{name} vector has length {float(norms.max()):.4g}, far beyond any trained factor"
    return None


def checked_records(records: list[PointRecord], collection: str) -> list[PointRecord]:
    """``records`` if every vector in them is sound.

    Raises:
        DamagedStoreError: naming the collection, the point and the vector.
    """
    for record in records:
        for name, vector in record.vectors.items():
            problem = vector_problem(name, vector)
            if problem:
                raise damaged(collection, f"point {record.id}: {problem}")
    return records


def score_bound(spec: QuerySpec) -> float:
    """The largest score magnitude ``spec`` can give on a sound collection."""
    if isinstance(spec, SparseNearest):
        return float(np.abs(np.asarray(spec.vector.values, np.float64)).sum()) * DOT_NORM_LIMIT
    if not isinstance(spec, Nearest):
        if is_cosine(spec.using):
            return 1.0  # a recommend query's best score on cosines is squashed into [-1, 1]
        examples = [*spec.positives, *spec.negatives]
        return max((float(np.linalg.norm(np.asarray(v, np.float64))) for v in examples), default=1.0) * DOT_NORM_LIMIT
    vector = np.asarray(spec.vector, np.float64)
    if not is_cosine(spec.using):
        return float(np.linalg.norm(vector)) * DOT_NORM_LIMIT
    if spec.using in MULTIVECTORS and vector.ndim == 2:
        return float(vector.shape[0])  # MaxSim adds each query row's best cosine
    return 1.0


def checked_hits(hits: list[Hit], collection: str, bound: float, low: float | None = None) -> list[Hit]:
    """``hits`` if every score is finite and within [``low`` or -bound, bound] (plus tolerance)
    and every vector returned with them is sound.

    Raises:
        DamagedStoreError: naming the collection, the item and the score.
    """
    top = bound * (1 + UNIT_TOLERANCE) + UNIT_TOLERANCE
    bottom = -top if low is None else low - UNIT_TOLERANCE
    for hit in hits:
        if not np.isfinite(hit.score) or not bottom <= hit.score <= top:
            raise damaged(
                collection,
                f"item {hit.id} scored {hit.score:.4g}, outside [{bottom:.4g}, {top:.4g}] that its vectors allow",
            )
        for name, vector in hit.vectors.items():
            problem = vector_problem(name, vector)
            if problem:
                raise damaged(collection, f"item {hit.id}: {problem}")
    return hits


def checked_search(hits: list[Hit], collection: str, spec: QuerySpec) -> list[Hit]:
    """The hits of one nearest or recommend query, checked (see :func:`checked_hits`)."""
    return checked_hits(hits, collection, score_bound(spec))


def checked_fused(
    hits: list[Hit],
    collection: str,
    branches: int,
    weights: list[float] | None,
    method: str = "rrf",
    rrf_k: int = RRF_K,
) -> list[Hit]:
    """The hits of a fusion, checked: a reciprocal-rank fusion's are positive and at most what
    every branch's first place adds (Qdrant's weighted RRF: ``1 / (1 / w + k - 1)`` at position 0;
    ``1 / k`` unweighted); a distribution-based one's add one normalised score in [0, 1] per branch."""
    if method == "dbsf":
        return checked_hits(hits, collection, float(branches), low=0.0)
    firsts = [1.0 / (1.0 / w + rrf_k - 1.0) if w > 0 else 0.0 for w in (weights or [1.0] * branches)]
    return checked_hits(hits, collection, sum(firsts), low=0.0)
