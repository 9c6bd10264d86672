"""``embedder duplicates``: near-duplicate items (the same clip re-uploaded, re-encoded, scaled,
cropped, trimmed or watermarked), found from the per-segment vectors.

Only the picture and sound count: each segment's content vector is cut to its visual and audio
blocks (a copy's file name or title is not evidence of copying). Why segments and not the item's
content vector: a trimmed copy samples other frames than its
original, so their pooled vectors drift apart, while each of its segments still has a twin in the
original. Qdrant scores a multivector query against the ``segments`` multivector by MaxSim, the
sum over the query's rows of each row's best cosine; divided by the number of rows it is the
**coverage** of A by B: how well every moment of A is found somewhere in B (1 for a copy, or for
a piece cut out of B). The similarity of two items is the larger of the two coverages, so a
trimmed copy and its original match both ways round. Items without segments (a collection made
with ``segments = false``) are compared by their content vectors' cosine.

Each item asks the engine for its nearest items by this score (one query per item); pairs at or
above the threshold are joined into clusters (union-find). A cluster's representative is its
longest item (ties: the one ingested first), the copy a person would keep.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from embedder.store import Nearest, VectorStore

DEFAULT_THRESHOLD = 0.95
NEIGHBOURS = 20  # candidates asked of the engine per item (its ranking includes the text)
DUPLICATE_OF = "duplicate_of"  # payload key: the cluster's representative, on the other members


@dataclass
class Cluster:
    """Items that are copies of one another: the one to keep first, with the pair scores."""

    representative: str
    members: list[dict] = field(default_factory=list)  # {"id", "path", "score"}: score vs the representative

    def to_dict(self) -> dict:
        return asdict(self)


def _picture_and_sound(rows, dims: dict[str, int]) -> np.ndarray:
    """Content rows cut to their visual and audio blocks, renormalised: a copy keeps the picture and
    the sound, while its text (a new file name, another title) says nothing about the copying."""
    rows = np.atleast_2d(np.asarray(rows, np.float32))
    kept = rows[:, : dims["visual"] + dims["audio"]]
    norms = np.linalg.norm(kept, axis=1, keepdims=True)
    return np.divide(kept, norms, out=np.zeros_like(kept), where=norms > 0)


def _coverage(query: np.ndarray, target: np.ndarray) -> float:
    """Mean over the query's rows of the best cosine with any of the target's rows."""
    return float((query @ target.T).max(axis=1).mean())


def similarity(a, b, dims: dict[str, int]) -> float:
    """How much two stored items (records with vectors) are copies of each other (see above),
    on their picture and sound; ``dims`` are the content blocks' sizes."""
    name = "segments" if "segments" in a.vectors and "segments" in b.vectors else "content"
    x, y = _picture_and_sound(a.vectors[name], dims), _picture_and_sound(b.vectors[name], dims)
    return max(_coverage(x, y), _coverage(y, x))


def find_duplicates(store: VectorStore, threshold: float = DEFAULT_THRESHOLD, progress=None) -> list[Cluster]:
    """Clusters of near-duplicate media items, largest first (see the module docstring)."""
    from embedder.progress import Progress

    progress = progress or Progress()
    dims = store.collection_dims() or {}
    has_segments = store.has_vector("segments")
    wanted = ["content", *(["segments"] if has_segments else [])]
    records = {r.id: r for r in store.scroll(with_vectors=wanted) if r.payload.get("paths") and "content" in r.vectors}
    parent = {i: i for i in records}

    def root(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs: dict[tuple[str, str], float] = {}
    progress.start(len(records), "compare")
    for rid, record in records.items():
        if has_segments and "segments" in record.vectors:
            spec = Nearest(np.asarray(record.vectors["segments"], np.float32), "segments")
        else:
            spec = Nearest(record.vectors["content"], "content")
        for hit in store.search(spec, limit=NEIGHBOURS + 1, exclude_ids=[rid]):
            other = records.get(hit.id)
            if other is None or (min(rid, hit.id), max(rid, hit.id)) in pairs:
                continue
            score = similarity(record, other, dims)
            if score >= threshold:
                pairs[(min(rid, hit.id), max(rid, hit.id))] = score
                parent[root(rid)] = root(hit.id)
        progress.advance(record.payload.get("path") or rid, "compared")
    progress.finish()
    groups: dict[str, list[str]] = {}
    for rid in records:
        groups.setdefault(root(rid), []).append(rid)
    clusters = []
    for ids in groups.values():
        if len(ids) < 2:
            continue
        ids.sort(
            key=lambda i: (
                -float(records[i].payload.get("duration") or 0),
                records[i].payload.get("ingested_at") or "",
                i,
            )
        )
        keep = records[ids[0]]
        clusters.append(
            Cluster(
                representative=keep.id,
                members=[
                    {
                        "id": i,
                        "path": records[i].payload.get("path"),
                        "score": round(1.0 if i == keep.id else similarity(keep, records[i], dims), 4),
                    }
                    for i in ids
                ],
            )
        )
    clusters.sort(key=lambda c: (-len(c.members), c.representative))
    return clusters


def mark_duplicates(store: VectorStore, clusters: list[Cluster]) -> int:
    """Record each cluster on its items: ``duplicate_of`` (the representative) on the others, and
    clear it where an item is no longer a copy. Returns how many items are marked."""
    marked = {m["id"]: c.representative for c in clusters for m in c.members if m["id"] != c.representative}
    stale = [r.id for r in store.scroll() if r.payload.get(DUPLICATE_OF) and r.id not in marked]
    for rid in stale:
        store.set_payload([rid], {DUPLICATE_OF: None})
    by_rep: dict[str, list[str]] = {}
    for rid, rep in marked.items():
        by_rep.setdefault(rep, []).append(rid)
    for rep, ids in by_rep.items():
        store.set_payload(ids, {DUPLICATE_OF: rep})
    return len(marked)


def cluster_key(hit) -> str:
    """The cluster an item belongs to: the item it copies (``duplicate_of``), else itself."""
    return getattr(hit, "cluster", None) or hit.id


def cluster_keys(store: VectorStore, ids: list[str]) -> set[str]:
    """The clusters of stored items ``ids`` (missing ids are left out): for leaving out copies of
    an item a query starts from, or of items a user has already seen."""
    return {r.payload.get(DUPLICATE_OF) or r.id for r in store.retrieve(list(ids))} if ids else set()


def collapse(hits: list, limit: int, drop: set[str] | frozenset = frozenset()) -> list:
    """The hits with each duplicate cluster kept once, at its best-ranked member's place, and
    no member of the clusters in ``drop`` at all."""
    seen, out = set(drop), []
    for hit in hits:
        cluster = cluster_key(hit)
        if cluster in seen:
            continue
        seen.add(cluster)
        out.append(hit)
        if len(out) == limit:
            break
    return out


__all__ = [
    "DEFAULT_THRESHOLD",
    "DUPLICATE_OF",
    "Cluster",
    "cluster_key",
    "cluster_keys",
    "collapse",
    "find_duplicates",
    "mark_duplicates",
    "similarity",
]
