"""Collaborative filtering with ``implicit`` (ALS or BPR), written to Qdrant as vectors.

Item factors become the named vectors ``cf`` (dot product, what the model scores for a user) and
``cf_sim`` (cosine, item-to-item) on the media collection; items without media get points of their
own. User factors, L2-normalised, go to the ``<collection>_users`` collection: normalising keeps
each user's item ranking unchanged and makes user-to-user scores cosines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from embedder.errors import EmbedderError
from embedder.ids import resolve_items, user_point_id
from embedder.recommend.interactions import Interaction
from embedder.store import PointRecord, VectorStore

if TYPE_CHECKING:
    from embedder.settings import Settings

ITEM_ONLY_PAYLOAD = {"kind": "item", "modalities": [], "paths": []}


@dataclass
class CFModel:
    """Fitted factors and the id maps that go with them."""

    kind: str
    users: list[str]
    items: list[str]
    user_factors: np.ndarray
    item_factors: np.ndarray
    popularity: dict[str, int] = field(default_factory=dict)
    version: str = ""
    params: dict = field(default_factory=dict)  # the CFParams it was fitted with

    @property
    def dim(self) -> int:
        return int(self.item_factors.shape[1])


def interaction_matrix(events: list[Interaction]):
    """Users x items CSR of summed positive weights (negative feedback is not a confidence)."""
    from scipy.sparse import csr_matrix

    users = sorted({e.user for e in events if e.weight > 0})
    items = sorted({e.item for e in events if e.weight > 0})
    u_index = {u: i for i, u in enumerate(users)}
    i_index = {it: i for i, it in enumerate(items)}
    rows, cols, vals = [], [], []
    for e in events:
        if e.weight > 0:
            rows.append(u_index[e.user])
            cols.append(i_index[e.item])
            vals.append(e.weight)
    matrix = csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(len(users), len(items)))
    matrix.sum_duplicates()
    return matrix, users, items


WEIGHTINGS = ("log1p", "bm25", "raw", "binary")


@dataclass(frozen=True)
class CFParams:
    """The collaborative model's settings (``cf_*`` in the settings, flags on train and eval).

    ``weighting`` turns summed positive weights ``w`` (play counts, ratings above the threshold,
    event weights) into ALS confidences for the observed cells; unobserved cells have confidence 1:

    * ``log1p``: ``1 + alpha * log(1 + w)`` (Hu, Koren and Volinsky's log form): counts keep their
      order, large counts are tamed, and binary logs (every ``w`` 1) get ``1 + 0.69 alpha``;
    * ``bm25``: ``alpha * bm25(w)`` with ``K1 = bm25_k1``, B = 0.8 (``implicit``'s weighting);
    * ``raw``: ``alpha * w``;
    * ``binary``: ``alpha`` for every observed cell.
    """

    factors: int = 64
    weighting: str = "log1p"
    alpha: float = 1.0
    regularization: float = 0.05
    iterations: int = 15
    bm25_k1: float = 1.2

    def __post_init__(self):
        if self.weighting not in WEIGHTINGS:
            raise EmbedderError(f"--weighting must be one of {', '.join(WEIGHTINGS)}, not '{self.weighting}'")
        if self.alpha <= 0 or self.regularization < 0 or self.iterations < 1 or self.factors < 2:
            raise EmbedderError(
                "cf settings out of range: alpha > 0, regularization >= 0, iterations >= 1, factors >= 2"
            )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> CFParams:
        """The settings' ``cf_*`` values, with ``overrides`` (``None`` values ignored) on top."""
        values = {
            "factors": settings.cf_factors,
            "weighting": settings.cf_weighting,
            "alpha": settings.cf_alpha,
            "regularization": settings.cf_regularization,
            "iterations": settings.cf_iterations,
            "bm25_k1": settings.cf_bm25_k1,
        }
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    def to_dict(self) -> dict:
        return asdict(self)


def confidence(matrix, params: CFParams):
    """The ALS confidence matrix for summed positive weights (see :class:`CFParams`)."""
    if params.weighting == "bm25":
        from implicit.nearest_neighbours import bm25_weight

        out = bm25_weight(matrix, K1=params.bm25_k1, B=0.8).tocsr().astype(np.float32)
        out.data *= params.alpha
        return out
    out = matrix.copy().astype(np.float32)
    if params.weighting == "log1p":
        out.data = 1.0 + params.alpha * np.log1p(out.data)
    elif params.weighting == "raw":
        out.data = params.alpha * out.data
    else:
        out.data = np.full_like(out.data, params.alpha)
    return out


def fold_in_user(
    rows: list[int], weights: list[float], item_factors: np.ndarray, gram: np.ndarray, params: CFParams
) -> np.ndarray:
    """A user's ALS factors against fixed item factors: the exact least-squares step ALS takes for
    every user, for one user (the "fold-in"), so a new event moves their vector without retraining.

    Solves ``(YtY + reg I + sum_i (c_i - 1) y_i y_i^T) x = sum_i c_i y_i`` over the items the user
    interacted with (``rows`` of ``item_factors`` = Y, their summed positive ``weights``), with
    the confidences :func:`confidence` gives. ``gram`` is ``YtY``, computed once per model.

    Raises:
        EmbedderError: bm25 weighting, whose confidences depend on the whole training matrix.
    """
    if params.weighting == "bm25":
        raise EmbedderError("bm25 confidences need the whole interaction matrix: a fold-in waits for the next training")
    from scipy.sparse import csr_matrix

    one_row = csr_matrix((np.asarray(weights, np.float32), ([0] * len(rows), rows)), shape=(1, len(item_factors)))
    one_row.sum_duplicates()
    conf = confidence(one_row, params)
    factors = item_factors.astype(np.float64)
    a = gram.astype(np.float64) + params.regularization * np.eye(factors.shape[1])
    b = np.zeros(factors.shape[1])
    for i, c in zip(conf.indices, conf.data):
        y = factors[i]
        a += (c - 1.0) * np.outer(y, y)
        b += c * y
    return np.linalg.solve(a, b).astype(np.float32)


def fit_cf(events: list[Interaction], params: CFParams | None = None, model: str = "als", seed: int = 0) -> CFModel:
    """Fit ALS (default) or BPR on implicit feedback.

    Confidences come from ``params.weighting``. Single-threaded with a fixed seed, so results
    repeat exactly.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    params = params or CFParams()
    matrix, users, items = interaction_matrix(events)
    if matrix.nnz == 0:
        raise EmbedderError("no positive interactions to learn from; import some with 'embedder interactions import'")
    # implicit's own advice: BLAS threads fight its solver threads; it checks this on construction.
    with threadpool_limits(1, "blas"):
        if model == "als":
            algo = AlternatingLeastSquares(
                factors=params.factors,
                regularization=params.regularization,
                iterations=params.iterations,
                random_state=seed,
                num_threads=1,
            )
            weighted = confidence(matrix, params)
        elif model == "bpr":
            # implicit's BPR appends a bias column, so ask for one factor less to keep the stored size.
            # It samples (positive, negative) pairs and ignores confidences, and needs more epochs than ALS.
            algo = BayesianPersonalizedRanking(
                factors=params.factors - 1, iterations=max(params.iterations, 100), random_state=seed, num_threads=1
            )
            weighted = (matrix > 0).astype(np.float32).tocsr()
        else:
            raise EmbedderError(f"--model must be als or bpr, not '{model}'")
        algo.fit(weighted, show_progress=False)
    popularity = np.asarray((matrix > 0).sum(axis=0)).ravel()
    return CFModel(
        kind=model,
        users=users,
        items=items,
        user_factors=np.asarray(algo.user_factors, np.float32),
        item_factors=np.asarray(algo.item_factors, np.float32),
        popularity={it: int(c) for it, c in zip(items, popularity)},
        version=f"{model}-{params.factors}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}",
        params=params.to_dict(),
    )


def cf_sim_vector(factors: np.ndarray) -> dict[str, np.ndarray]:
    """``{"cf_sim": factors}`` normalised here, or nothing for all-zero factors (no direction).

    The engine leaves a cosine vector whose squared length is below float32's epsilon as it is,
    and an item few users touched can have factors that small (Last.fm, default ALS): normalised
    here, it is stored at length 1 like every other cosine vector.
    """
    norm = float(np.linalg.norm(np.asarray(factors, np.float64)))
    return {"cf_sim": (np.asarray(factors, np.float64) / norm).astype(np.float32)} if norm > 0 else {}


def write_cf(model: CFModel, media: VectorStore, users: VectorStore, batch: int = 1000) -> dict:
    """Store item factors on the media collection and user vectors in the users collection."""
    ids = resolve_items(model.items, media)
    items = []
    for key, factors in zip(model.items, model.item_factors):
        meta = {"item": key, "popularity": float(model.popularity.get(key, 0)), "cf_model": model.version}
        items.append(PointRecord(ids[key], {"cf": factors, **cf_sim_vector(factors)}, meta))
    # Items known only from interactions get points of their own.
    with_media, without_media = media.merge(items, batch, new_payload=ITEM_ONLY_PAYLOAD)
    if users.collection_dims() is None:
        users.ensure_collection({"cf": model.dim})
    norms = np.maximum(np.linalg.norm(model.user_factors, axis=1, keepdims=True), 1e-12)
    unit = model.user_factors / norms
    points = [
        PointRecord(user_point_id(u), {"cf": vec}, {"user": u, "cf_model": model.version})
        for u, vec in zip(model.users, unit)
    ]
    users.merge(points, batch)
    current = {p.id for p in points}
    # Users gone from the log are dropped, unless a trained head still serves them.
    stale = [r.id for r in users.scroll() if r.id not in current and "rec_model" not in r.payload]
    users.delete(stale)
    return {
        "model": model.version,
        "users": len(model.users),
        "items": len(model.items),
        "items_with_media": with_media,
        "items_without_media": without_media,
        "dim": model.dim,
    }
