"""Pooling and cross-modal fusion: pure vector math, no I/O.

The rule (documented in docs/ingest-and-media.md):

* Each modality is pooled to one unit vector: the mean of its unit vectors, renormalised
  (frames -> ``visual``, audio windows -> ``audio``; ``text`` is one vector already).
* Base weights ``w_m`` (default visual 0.5, audio 0.3, text 0.2) are renormalised over the
  modalities the item has: ``w'_m = w_m / sum(w_k for present k)``; missing blocks are zero.
* ``content = concat(sqrt(w'_v) v, sqrt(w'_a) a, sqrt(w'_t) t)``, which has unit length.
* So for two items with the same modalities, ``content . content' = sum_m w'_m cos_m``; in
  general ``sum over shared m of sqrt(w'_m w''_m) cos_m``.
* A text query is ``concat(sqrt(w_m) q_m)`` where ``q_m`` is the query in block m's space (CLIP
  text for visual and text, CLAP text for audio), so its score against a full item is
  ``sum_m w_m cos_m`` and stays comparable across items.
"""

from __future__ import annotations

import numpy as np

MODALITIES = ("visual", "audio", "text")
FUSION_VERSION = "concat-sqrtw-v1"


def normalise(vector: np.ndarray) -> np.ndarray:
    """Unit length (a zero vector stays zero)."""
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def pool(vectors: np.ndarray) -> np.ndarray:
    """Mean of unit vectors, renormalised: one vector for all frames or windows of an item."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError("pool needs a non-empty 2-D array")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return normalise(unit.mean(axis=0))


def item_weights(present: list[str] | tuple[str, ...], base: dict[str, float]) -> dict[str, float]:
    """Base weights renormalised over the present modalities; absent ones get 0."""
    total = sum(base[m] for m in present)
    if total <= 0:
        raise ValueError(f"no positive weight among the present modalities {list(present)}")
    return {m: (base[m] / total if m in present else 0.0) for m in MODALITIES}


def fuse(vectors: dict[str, np.ndarray | None], dims: dict[str, int], base: dict[str, float]) -> np.ndarray:
    """The ``content`` vector of an item from its pooled modality vectors.

    Args:
        vectors: modality name -> unit vector, or ``None``/absent when the item lacks it.
        dims: size of each modality block (so missing blocks can be zero-filled).
        base: base weights per modality.
    """
    present = [m for m in MODALITIES if vectors.get(m) is not None]
    weights = item_weights(present, base)
    blocks = []
    for m in MODALITIES:
        vec = vectors.get(m)
        block = np.zeros(dims[m], np.float32) if vec is None else normalise(vec) * np.sqrt(weights[m])
        blocks.append(block.astype(np.float32))
    return np.concatenate(blocks)


def fuse_query(query: dict[str, np.ndarray], base: dict[str, float]) -> np.ndarray:
    """A query in ``content`` space from its vector in each block's space (modality -> vector)."""
    weights = item_weights(MODALITIES, base)
    return np.concatenate([normalise(query[m]) * np.sqrt(weights[m]) for m in MODALITIES]).astype(np.float32)


def split_content(content: np.ndarray, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """The weighted blocks of a content vector, by modality (for explanations)."""
    out, start = {}, 0
    for m in MODALITIES:
        out[m] = content[start : start + dims[m]]
        start += dims[m]
    return out


def block_contributions(vector: np.ndarray, query: np.ndarray, dims: dict[str, int]) -> dict[str, float]:
    """What each modality block adds to ``vector . query`` (two content-space vectors): the dot
    products of their blocks, which add up to the score exactly (blocks either lacks are left out)."""
    a, b = split_content(vector, dims), split_content(query, dims)
    return {m: round(float(np.dot(a[m], b[m])), 6) for m in MODALITIES if np.any(a[m]) and np.any(b[m])}
