"""Item-to-item models: EASE, RP3beta and item-kNN, fitted with numpy/scipy, served by Qdrant.

Each model is an items x items weight matrix ``B``; a user's score for item ``i`` is
``x_u · B[:, i]``, where ``x_u`` holds the user's positives. Column ``i`` of ``B``, pruned to
its ``neighbours`` largest weights by magnitude, is stored as item ``i``'s sparse vector of the
model's name, with dimensions numbered by each item's stable ``i2i_index``
(:mod:`embedder.recommend.sparse`). A sparse query with ``x_u`` then returns exactly the
model's scores, and a new event changes only the query: real time with no fold-in.

* **EASE** (Steck, 2019): ``P = (XᵀX + λI)⁻¹``, ``B = I - P · diag(1/diag(P))`` with a zero
  diagonal. A dense items x items inverse: bounded by ``max_items`` (the most popular items
  are kept; :func:`ease_item_limit` sizes the default from the machine's memory).
* **RP3beta** (Paudel et al., 2016; as tuned by Dacrema et al., 2019): the random walk
  item -> user -> item with transition probabilities raised to ``alpha``, divided by the target
  item's popularity to the power ``beta``. Sparse by construction.
* **item-kNN**: cosine similarity of item columns of ``X``, with an optional ``shrink`` term in
  the denominator (Sarwar et al., 2001). Sparse by construction.

The math is a few lines of scipy each, so no recommender library is pulled in (LensKit's EASE
and item-kNN would bring pandas-based data sets and torch for the same products).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np

from embedder.errors import EmbedderError
from embedder.recommend.interactions import Interaction

KINDS = ("ease", "rp3beta", "itemknn")
I2I_WEIGHTINGS = ("binary", "log1p")
# EASE holds one dense float32 items x items array (the Gram matrix, overwritten in place by its
# Cholesky factor, the inverse and B), plus bounded temporaries (pruning goes by blocks of
# columns): items² x 4 bytes + about 0.4 GB at the peak (measured with tracemalloc).
EASE_BYTES_PER_CELL = 4
EASE_FIXED_BYTES = 512 * 1024**2
EASE_MEMORY_SHARE = 0.5  # of the memory available when the limit is sized
# The inverse costs items³: 17,632 items took 39 s on 2 cores, so 30,000 take about 3 minutes.
# Beyond that the default stops, whatever the memory; i2i_max_items raises it on purpose.
EASE_DEFAULT_MAX_ITEMS = 30_000


@dataclass(frozen=True)
class ItemItemParams:
    """One item-to-item model's settings (``i2i_*`` settings; flags on train and eval).

    Attributes:
        kind: ``ease``, ``rp3beta`` or ``itemknn``.
        neighbours: weights kept per item (its column of ``B``, largest magnitude first).
        l2: EASE's regularisation λ.
        alpha: RP3beta's exponent on transition probabilities.
        beta: RP3beta's popularity penalty (0: plain P3alpha).
        shrink: item-kNN's shrinkage added to the cosine's denominator.
        weighting: how summed positive weights become ``x_u``: ``binary`` (1 per item) or
            ``log1p`` (``log(1 + w)``); the same rule builds the user's query.
        max_items: EASE only: the largest catalogue it inverts (the most popular items are kept
            beyond it); 0 sizes it from the machine's memory (:func:`ease_item_limit`).
    """

    kind: str = "ease"
    neighbours: int = 200
    l2: float = 200.0
    alpha: float = 1.0
    beta: float = 0.5
    shrink: float = 0.0
    weighting: str = "binary"
    max_items: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise EmbedderError(f"item-to-item model must be one of {', '.join(KINDS)}, not '{self.kind}'")
        if self.weighting not in I2I_WEIGHTINGS:
            raise EmbedderError(f"i2i weighting must be one of {', '.join(I2I_WEIGHTINGS)}, not '{self.weighting}'")
        if self.neighbours < 1 or self.l2 <= 0 or self.alpha <= 0 or self.beta < 0 or self.shrink < 0:
            raise EmbedderError(
                "item-to-item settings out of range: neighbours >= 1, l2 > 0, alpha > 0, beta >= 0, shrink >= 0"
            )
        if self.max_items < 0:
            raise EmbedderError("i2i_max_items must be >= 0 (0 sizes it from the machine's memory)")

    @classmethod
    def from_settings(cls, settings, kind: str, **overrides) -> ItemItemParams:
        """The settings' ``i2i_*`` values for ``kind``, with ``overrides`` (``None`` ignored) on top."""
        values = {
            "kind": kind,
            "neighbours": settings.i2i_neighbours,
            "l2": settings.i2i_ease_l2,
            "alpha": settings.i2i_rp3_alpha,
            "beta": settings.i2i_rp3_beta,
            "shrink": settings.i2i_knn_shrink,
            "weighting": settings.i2i_weighting,
            "max_items": settings.i2i_max_items,
        }
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    def relevant(self) -> dict:
        """Only the settings this kind of model reads (for reports)."""
        own = {"ease": ("l2", "max_items"), "rp3beta": ("alpha", "beta"), "itemknn": ("shrink",)}[self.kind]
        return {k: v for k, v in asdict(self).items() if k in ("kind", "neighbours", "weighting", *own)}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ItemItemModel:
    """A fitted model: ``weights[:, i]`` is item ``items[i]``'s column of ``B`` (pruned)."""

    params: ItemItemParams
    items: list[str]  # item keys, in the matrix's order
    weights: object  # scipy CSC items x items: rows = source items, columns = target items
    popularity: dict[str, int] = field(default_factory=dict)
    version: str = ""
    fit_seconds: float = 0.0
    left_out: int = 0  # items beyond max_items (EASE), which the model cannot recommend

    @property
    def kind(self) -> str:
        return self.params.kind


def user_vector(weights: list[float], weighting: str) -> np.ndarray:
    """``x_u``'s values from summed positive weights, as the model was fitted on them."""
    values = np.asarray(weights, np.float64)
    return np.ones_like(values) if weighting == "binary" else np.log1p(np.maximum(values, 0.0))


def weighted_matrix(events: list[Interaction], weighting: str, items: list[str] | None = None):
    """Users x items CSR of ``x_u`` values (see :func:`user_vector`), with the item order used.

    ``items`` restricts and orders the columns (events on other items are left out).
    """
    from scipy.sparse import csr_matrix

    sums: dict[tuple[str, str], float] = {}
    for e in events:
        if e.weight > 0:
            sums[(e.user, e.item)] = sums.get((e.user, e.item), 0.0) + e.weight
    if items is None:
        items = sorted({i for _, i in sums})
    i_index = {it: n for n, it in enumerate(items)}
    users = sorted({u for u, i in sums if i in i_index})
    u_index = {u: n for n, u in enumerate(users)}
    kept = [(u, i, w) for (u, i), w in sums.items() if i in i_index]
    values = user_vector([w for _, _, w in kept], weighting) if kept else np.zeros(0)
    matrix = csr_matrix(
        (values.astype(np.float32), ([u_index[u] for u, _, _ in kept], [i_index[i] for _, i, _ in kept])),
        shape=(len(users), len(items)),
    )
    return matrix, users, items


def available_memory_bytes() -> int:
    """Memory the process could use now (MemAvailable), or physical memory where that is unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 8 * 1024**3


def ease_item_limit(memory_bytes: int | None = None) -> int:
    """The largest catalogue EASE inverts within :data:`EASE_MEMORY_SHARE` of available memory."""
    memory = available_memory_bytes() if memory_bytes is None else memory_bytes
    return max(1000, int((max(memory * EASE_MEMORY_SHARE - EASE_FIXED_BYTES, 0) / EASE_BYTES_PER_CELL) ** 0.5))


def _prune_columns(dense_or_sparse, neighbours: int):
    """Keep each column's ``neighbours`` largest entries by magnitude; a CSC matrix."""
    from scipy.sparse import csc_matrix, issparse

    if issparse(dense_or_sparse):
        m = csc_matrix(dense_or_sparse, dtype=np.float32)
        m.eliminate_zeros()
        rows, cols, vals = [], [], []
        for j in range(m.shape[1]):
            start, end = m.indptr[j], m.indptr[j + 1]
            idx, data = m.indices[start:end], m.data[start:end]
            if len(data) > neighbours:
                keep = np.argpartition(-np.abs(data), neighbours - 1)[:neighbours]
                idx, data = idx[keep], data[keep]
            rows.append(idx)
            vals.append(data)
            cols.append(np.full(len(idx), j, np.int32))
        if not rows:
            return csc_matrix(m.shape, dtype=np.float32)
        return csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)
    dense = np.asarray(dense_or_sparse)
    n = dense.shape[0]
    k = min(neighbours, n)
    # argpartition over each column, in blocks so no second items² array is made at once
    rows, cols, vals = [], [], []
    block = max(1, 2**24 // max(n, 1))  # about 200 MB of temporaries a block, whatever the catalogue
    for start in range(0, dense.shape[1], block):
        part = dense[:, start : start + block]
        top = (
            np.argpartition(-np.abs(part), k - 1, axis=0)[:k]
            if k < n
            else np.tile(np.arange(n)[:, None], part.shape[1])
        )
        values = np.take_along_axis(part, top, axis=0)
        nonzero = values != 0
        rows.append(top[nonzero])
        cols.append((np.arange(part.shape[1])[None, :] + start + np.zeros_like(top))[nonzero])
        vals.append(values[nonzero])
    return csc_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=dense.shape
    )


def _mirror_upper(square: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle onto the lower one in place, a block of rows at a time."""
    for start in range(0, square.shape[0], block):
        end = min(start + block, square.shape[0])
        square[start:end, :start] = square[:start, start:end].T
        diagonal = square[start:end, start:end]
        diagonal[...] = np.triu(diagonal) + np.triu(diagonal, 1).T


def ease_weights(x, l2: float, neighbours: int):
    """EASE's ``B`` for users x items ``x``, pruned per column (dense float32 inverse, LAPACK Cholesky)."""
    from scipy.linalg import lapack
    from threadpoolctl import threadpool_limits

    n = x.shape[1]
    # Fortran order, so LAPACK works in place: the Gram matrix becomes its Cholesky factor, then
    # the inverse, then B, in the one items x items array (no copy of it is ever made).
    gram = np.empty((n, n), dtype=np.float32, order="F")
    xt, columns = x.T.tocsr(), x.tocsc()
    for start in range(0, n, 1024):  # by blocks of columns: the sparse product never exists whole
        gram[:, start : start + 1024] = (xt @ columns[:, start : start + 1024]).toarray()
    gram[np.diag_indices(n)] += np.float32(l2)
    with threadpool_limits(os.cpu_count() or 1, "blas"):
        # G is symmetric positive definite: Cholesky then its inverse costs half an LU inverse.
        chol, info = lapack.spotrf(gram, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise EmbedderError(f"EASE: the Gram matrix is not positive definite (LAPACK info {info}); raise l2")
        inverse, info = lapack.spotri(chol, lower=False, overwrite_c=True)
        if info != 0:
            raise EmbedderError(f"EASE: the inverse failed (LAPACK info {info}); raise l2")
    del gram, chol
    _mirror_upper(inverse)  # potri fills the upper triangle only
    diagonal = np.diag(inverse).copy()
    inverse /= -diagonal[None, :]  # B[j, i] = -P[j, i] / P[i, i]
    inverse[np.diag_indices(n)] = 0.0
    return _prune_columns(inverse, neighbours)


def rp3beta_weights(x, alpha: float, beta: float, neighbours: int):
    """RP3beta's item -> item transition weights, divided by the target's popularity ** beta."""
    from scipy.sparse import csr_matrix, diags

    binary = csr_matrix(x, dtype=np.float64)
    binary.data = np.ones_like(binary.data)  # the walk moves along interactions, not their strength

    def row_normalised(m):
        sums = np.asarray(m.sum(axis=1)).ravel()
        out = diags(1.0 / np.maximum(sums, 1e-12)) @ m
        out = csr_matrix(out)
        out.data **= alpha
        return out

    p_ui = row_normalised(binary)
    p_iu = row_normalised(binary.T.tocsr())
    walk = (p_iu @ p_ui).tocsc()
    popularity = np.asarray(binary.sum(axis=0)).ravel()
    walk = walk @ diags(1.0 / np.power(np.maximum(popularity, 1.0), beta))
    walk.setdiag(0.0)
    return _prune_columns(walk, neighbours)


def itemknn_weights(x, shrink: float, neighbours: int):
    """Cosine similarity between item columns of ``x`` (with shrinkage), diagonal zero."""
    from scipy.sparse import csc_matrix, diags

    gram = csc_matrix(x.T @ x, dtype=np.float64)
    norms = np.sqrt(np.maximum(gram.diagonal(), 0.0))
    inv = 1.0 / np.maximum(norms, 1e-12)
    sim = diags(inv) @ gram @ diags(inv)
    if shrink > 0:
        # cos * |a||b| / (|a||b| + shrink), applied to the stored entries only (the rest are 0)
        sim = csc_matrix(sim)
        coo = sim.tocoo()
        product = norms[coo.row] * norms[coo.col]
        coo.data = coo.data * product / (product + shrink)
        sim = coo.tocsc()
    sim = csc_matrix(sim)
    sim.setdiag(0.0)
    return _prune_columns(sim, neighbours)


def fit_item_item(events: list[Interaction], params: ItemItemParams) -> ItemItemModel:
    """Fit one item-to-item model on the positive events.

    Raises:
        EmbedderError: no positive events, or an EASE catalogue beyond its memory (with the
            limit and the models that have none).
    """
    import time

    started = time.perf_counter()
    counts: dict[str, set[str]] = {}
    for e in events:
        if e.weight > 0:
            counts.setdefault(e.item, set()).add(e.user)
    if not counts:
        raise EmbedderError("no positive interactions to learn from; import some with 'embedder interactions import'")
    popularity = {item: len(users) for item, users in counts.items()}
    items = sorted(popularity)
    left_out = 0
    if params.kind == "ease":
        limit = params.max_items or min(ease_item_limit(), EASE_DEFAULT_MAX_ITEMS)
        if len(items) > limit:
            # The most popular items carry most of the signal; the rest stay for other strategies.
            ranked = sorted(items, key=lambda i: (-popularity[i], i))
            items = sorted(ranked[:limit])
            left_out = len(popularity) - limit
    x, _, items = weighted_matrix(events, params.weighting, items)
    if params.kind == "ease":
        weights = ease_weights(x, params.l2, params.neighbours)
    elif params.kind == "rp3beta":
        weights = rp3beta_weights(x, params.alpha, params.beta, params.neighbours)
    else:
        weights = itemknn_weights(x, params.shrink, params.neighbours)
    return ItemItemModel(
        params=params,
        items=items,
        weights=weights,
        popularity={i: popularity[i] for i in items},
        version=f"{params.kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}",
        fit_seconds=round(time.perf_counter() - started, 3),
        left_out=left_out,
    )
