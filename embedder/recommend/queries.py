"""Recommendation queries, all executed by Qdrant: user -> items, item -> items, user -> users.

``recommend_for_user`` runs a strategy's branches, and fuses several in one Qdrant query:

* ``cf``: nearest items to the user's factor vector in ``cf`` (dot product, the ALS score);
* ``ease``, ``rp3beta``, ``itemknn``: the item-to-item models, a sparse query of the user's
  positives (:mod:`embedder.recommend.sparse`);
* ``content``: Qdrant's recommend query over ``content`` with the user's recent positive items
  as positives and their negative feedback as negatives;
* ``words``: BM25 over the items' words with the words of the user's positives
  (:func:`embedder.recommend.hybrid.words_query`);
* in hybrid (a collaborative branch and a content side, :class:`~embedder.recommend.hybrid.HybridParams`:
  weighted RRF or DBSF), the content side again, restricted to items without the collaborative
  model's vector (new media), so that the fusion does not bury them under items both find.

Cold start falls out of the same machinery: an item with media but no interactions has a
``content`` vector, so the content branch can return it; a user missing from the CF model but
with a few interactions gets the content branch alone; a user with nothing gets popular items,
optionally narrowed by a text query. Every hit lists the branches that found it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from embedder.errors import EmbedderError
from embedder.ids import resolve_items, user_point_id
from embedder.payload import MediaPayload, UserPayload
from embedder.recommend.hybrid import WORDS_BRANCH, HybridParams, new_items_spec, words_query
from embedder.recommend.interactions import Interaction
from embedder.recommend.sparse import UserQuery, contributions, user_query
from embedder.recommend.strategies import BRANCH_VECTORS, CONTENT_BRANCH, SPARSE_BRANCHES, get_strategy
from embedder.store import Nearest, Recommend, SparseNearest, VectorStore

HISTORY_POSITIVES = 20  # most recent positives used as examples by the content branch
HISTORY_NEGATIVES = 20
BRANCH_DEPTH = 5  # each branch prefetches limit * this many candidates before fusion


@dataclass
class Recommendation:
    """One recommended item, and how it was found."""

    id: str
    item: str | None
    path: str | None
    score: float
    branches: list[str]
    kind: str | None = None
    # Why (explain_recommendations): per branch, the user's liked items nearest to this one in that
    # branch's space, or how many users it is popular with; ``reason`` says it in words.
    because: list[dict] = field(default_factory=list)
    reason: str | None = None
    contributions: dict[str, float] | None = None  # similar --by content: per modality, adding up to score
    cluster: str | None = None  # the item it is a near-duplicate of ('embedder duplicates --mark'), if any

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RecommendResult:
    user: str
    strategy: str
    used: list[str]  # the branches that actually ran
    items: list[Recommendation] = field(default_factory=list)
    note: str | None = None
    chosen_by: str | None = None  # strategy 'auto': why this strategy answers (embedder.recommend.auto)

    def to_dict(self) -> dict:
        return {
            "user": self.user,
            "strategy": self.strategy,
            "used": self.used,
            "note": self.note,
            "chosen_by": self.chosen_by,
            "items": [r.to_dict() for r in self.items],
        }


def _rec(hit, branches: list[str]) -> Recommendation:
    p: MediaPayload = hit.payload
    return Recommendation(
        id=hit.id,
        item=p.get("item"),
        path=p.get("path"),
        score=round(hit.score, 6),
        branches=branches,
        kind=p.get("kind"),
        cluster=p.get("duplicate_of"),
    )


def history_ids(
    history: list[Interaction], media: VectorStore, ids: dict[str, str] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """(recent positive ids, recent negative ids, all seen ids) for a user's events in time order;
    ``ids`` (item key -> point id, from :func:`resolve_items`) when the caller has them already."""
    ids = ids if ids is not None else resolve_items(sorted({e.item for e in history}), media)
    positives = list(dict.fromkeys(ids[e.item] for e in reversed(history) if e.weight > 0))[:HISTORY_POSITIVES]
    negatives = list(dict.fromkeys(ids[e.item] for e in reversed(history) if e.weight < 0))[:HISTORY_NEGATIVES]
    return positives, negatives, sorted(set(ids.values()))


def _content_examples(media: VectorStore, positives: list[str], negatives: list[str]):
    vectors = {r.id: r.vectors.get("content") for r in media.retrieve(positives + negatives, with_vectors=["content"])}
    pos = [vectors[i] for i in positives if vectors.get(i) is not None]
    neg = [vectors[i] for i in negatives if vectors.get(i) is not None]
    return pos, neg


def recommend_for_user(
    user: str,
    history: list[Interaction],
    media: VectorStore,
    users: VectorStore | None,
    *,
    limit: int = 10,
    strategy: str = "hybrid",
    exclude_seen: bool = True,
    filter: dict | None = None,
    popular_fallback: bool = True,
    hybrid: HybridParams | None = None,
) -> RecommendResult:
    """Recommend items for ``user`` given their interaction history (oldest first).

    ``strategy`` names an entry of :data:`embedder.recommend.strategies.STRATEGIES` (or an alias).
    Branches whose vectors this user or collection lacks are left out; with none left, popular
    items are returned (unless ``popular_fallback`` is false), with a note saying why.
    ``hybrid``: which branches the hybrid strategy fuses, and how (default: ALS and content, RRF).
    """
    chosen = get_strategy(strategy)
    hybrid = hybrid or HybridParams()
    names = hybrid.branches if chosen.name == "hybrid" else chosen.branches
    # Resolved once: the branches below (the item-to-item queries) need the same ids.
    ids = resolve_items(sorted({e.item for e in history}), media) if history else {}
    positives, negatives, seen = history_ids(history, media, ids) if history else ([], [], [])
    exclude = seen if exclude_seen else None
    branches: dict[str, Nearest | Recommend | SparseNearest] = {}
    sparse_queries: dict[str, UserQuery] = {}
    user_vectors = {}
    if any(b in BRANCH_VECTORS for b in names) and users is not None and users.collection_dims():
        found = users.retrieve([user_point_id(user)], with_vectors=True)
        user_vectors = found[0].vectors if found else {}
    media_dims = media.collection_dims() or {}
    for branch in names:
        vector = BRANCH_VECTORS.get(branch)
        if vector is not None and vector in user_vectors and vector in media_dims:
            branches[branch] = Nearest(user_vectors[vector], vector)
        elif branch == CONTENT_BRANCH and positives:
            pos, neg = _content_examples(media, positives, negatives)
            if pos:
                branches[branch] = Recommend(pos, neg, "content")
        elif branch == WORDS_BRANCH and positives:
            query = words_query(media, positives)
            if query is not None:
                branches[branch] = query
        elif branch in SPARSE_BRANCHES and history and media.has_vector(branch):
            query = user_query(branch, history, media, ids)
            if query is not None:
                sparse_queries[branch] = query
                branches[branch] = query.spec
    result = RecommendResult(user=user, strategy=chosen.name, used=list(branches))
    if not branches:
        if chosen.branches and not popular_fallback:
            return result
        result.used = ["popular"]
        if chosen.branches:
            result.note = (
                "no interactions for this user: popular items"
                if not history
                else f"{MISSING_SIGNAL.get(chosen.name, f'no {chosen.name} signal for this user yet')}: popular items"
            )
        hits = most_popular(media, limit=limit, filter=filter, exclude_ids=exclude)
        result.items = [_rec(h, ["popular"]) for h in hits]
        explain_recommendations(result.items, media, positives)
        return result
    depth = limit * BRANCH_DEPTH
    per_branch = {
        name: media.search(spec, limit=depth, filter=filter, exclude_ids=exclude) for name, spec in branches.items()
    }
    if len(branches) == 1:
        ((name, hits),) = per_branch.items()
        result.items = [_rec(h, [name]) for h in hits[:limit]]
        explain_recommendations(result.items, media, positives, sparse_queries)
        return result
    fusing = dict(branches)
    weights = [hybrid.weight(name) for name in branches]
    if hybrid.base in branches and hybrid.content in branches:
        # The fusion rewards items both branches find, and the collaborative branch cannot score
        # media nobody has interacted with yet. A third prefetch ranks those new items by content
        # among themselves, so the best of them compete instead of trailing every warm item.
        fusing["new"] = new_items_spec(branches[hybrid.content], BRANCH_VECTORS.get(hybrid.base, hybrid.base))
        weights.append(hybrid.content_weight)
    fused = media.fused(
        [(spec, depth) for spec in fusing.values()],
        limit=limit,
        filter=filter,
        exclude_ids=exclude,
        weights=weights,
        method=hybrid.fusion,
        rrf_k=hybrid.rrf_k,
    )
    found_by = {name: {h.id for h in hits} for name, hits in per_branch.items()}
    result.items = [_rec(h, [n for n in branches if h.id in found_by[n]]) for h in fused]
    explain_recommendations(result.items, media, positives, sparse_queries)
    return result


# Why a strategy had nothing for a user with history, and what makes it: said instead of a bare
# "no signal", which read as if a model existed that merely knew nothing of the user.
MISSING_SIGNAL = {
    "trained": "no trained head covers this user ('embedder train' trains one on the users in the log when it runs)",
    "cf": "no collaborative vector for this user ('embedder interactions train' fits them; later events fold in)",
    "hybrid": "no collaborative vector for this user and no liked item with content "
    "('embedder interactions train' fits the vectors)",
    **{
        kind: f"no stored {kind} model covers this user's items "
        f"('embedder interactions train --model {kind}' fits one; later events count at once)"
        for kind in SPARSE_BRANCHES
    },
}

# The space each branch compares items in (cosine): where "because you liked X" is measured.
BRANCH_SPACES = {"cf": "cf_sim", "trained": "rec", CONTENT_BRANCH: "content", "new": "content"}
EXPLAIN_LIKED = 2  # liked items named per branch


def _cosine(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


def _name(payload: dict, point: str) -> str:
    import os

    return os.path.basename(payload.get("path") or "") or payload.get("item") or point


def explain_recommendations(
    items: list[Recommendation],
    media: VectorStore,
    positives: list[str],
    sparse_queries: dict[str, UserQuery] | None = None,
) -> None:
    """Fill in why each item was recommended, from stored vectors (no model runs).

    * an item-to-item branch (ease, rp3beta, itemknn): the user's items that contribute most to
      the item's score, each with its exact part ``x_uj · B[j, i]`` (the parts add up to the score);
    * a cf, trained or content branch: the user's recent positives nearest to the item in that
      branch's space, with their cosine. For the content branch the nearest one's cosine ``s``
      gives Qdrant's best-score recommend score exactly, ``0.5 * (1 + s / (1 + |s|))`` (unless a
      negative example is nearer);
    * popular: how many users interacted with it (``popularity``);
    * an item nobody has interacted with yet (no ``cf`` vector), found by content: "new item,
      close to your recent Z".
    """
    if not items:
        return
    spaces = sorted({BRANCH_SPACES[b] for r in items for b in r.branches if b in BRANCH_SPACES})
    sparse_queries = sparse_queries or {}
    found = {r.id: r for r in media.retrieve([r.id for r in items], with_vectors=[*spaces, "cf", *sparse_queries])}
    contributors = _sparse_contributors(items, found, sparse_queries, media)
    liked = [r for r in media.retrieve(positives, with_vectors=spaces)] if positives and spaces else []
    order = {p: i for i, p in enumerate(positives)}
    liked.sort(key=lambda r: order.get(r.id, len(order)))
    for rec in items:
        record = found.get(rec.id)
        vectors, payload = (record.vectors, record.payload) if record else ({}, {})
        why, words = [], []
        for branch in rec.branches:
            if branch == "popular":
                count = int(payload.get("popularity") or 0)
                why.append({"branch": branch, "popular_with": count})
                words.append(f"popular with {count} user{'s' if count != 1 else ''}")
                continue
            if branch in sparse_queries:
                parts = contributors.get((rec.id, branch), [])
                why.append({"branch": branch, "because_you_liked": parts})
                if parts:
                    names = [_name(p, p["id"]) for p in parts]
                    words.append(f"{branch}: because you liked " + " and ".join(names))
                continue
            space = BRANCH_SPACES.get(branch)
            if space is None or space not in vectors:
                continue
            near = sorted(
                ((_cosine(vectors[space], r.vectors[space]), r) for r in liked if space in r.vectors),
                key=lambda pair: -pair[0],
            )[:EXPLAIN_LIKED]
            why.append(
                {
                    "branch": branch,
                    "space": space,
                    "because_you_liked": [
                        {
                            "id": r.id,
                            "path": r.payload.get("path"),
                            "item": r.payload.get("item"),
                            "similarity": round(sim, 6),
                        }
                        for sim, r in near
                    ],
                }
            )
            names = [_name(r.payload, r.id) for _, r in near]
            if not names:
                continue
            if "cf" not in vectors and space == "content":
                words.append(f"new item, close to your recent {names[0]}")
            else:
                words.append(f"{branch}: because you liked " + " and ".join(names))
        rec.because = why
        rec.reason = "; ".join(dict.fromkeys(words)) or None


def _sparse_contributors(items, found, sparse_queries, media) -> dict[tuple[str, str], list[dict]]:
    """(item id, branch) -> the user's items that contribute most to its sparse score."""
    parts: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for rec in items:
        record = found.get(rec.id)
        for branch in rec.branches:
            if branch in sparse_queries and record is not None and branch in record.vectors:
                parts[(rec.id, branch)] = contributions(sparse_queries[branch], record.vectors[branch])[:EXPLAIN_LIKED]
    liked_ids = sorted({pid for ranked in parts.values() for pid, _ in ranked})
    payloads = {r.id: r.payload for r in media.retrieve(liked_ids)} if liked_ids else {}
    return {
        key: [
            {
                "id": pid,
                "path": payloads.get(pid, {}).get("path"),
                "item": payloads.get(pid, {}).get("item"),
                "contribution": round(value, 6),
            }
            for pid, value in ranked
        ]
        for key, ranked in parts.items()
    }


def most_popular(media: VectorStore, *, limit: int, filter: dict | None = None, exclude_ids=None) -> list:
    """The ``limit`` most popular points, equal popularity ordered by id, so answers repeat.

    Qdrant orders by the value alone and breaks ties arbitrarily, so the tie at the cut-off is
    read whole (fetching more while the last value read still equals the one at the cut-off).
    """
    fetch = limit
    while True:
        hits = media.top_by("popularity", limit=fetch, filter=filter, exclude_ids=exclude_ids)
        if len(hits) < fetch or not hits or hits[-1].score != hits[min(limit, len(hits)) - 1].score:
            break
        if fetch >= max(64 * limit, 1024):  # a tie this wide stays partly arbitrary, but bounded
            break
        fetch *= 2
    return sorted(hits, key=lambda h: (-h.score, h.id))[:limit]


def popular_items(media: VectorStore, *, limit: int = 10, text_hits: list | None = None) -> list[Recommendation]:
    """Most-interacted items; with ``text_hits`` (from a text search), those re-ranked by popularity."""
    if text_hits is None:
        out = [_rec(h, ["popular"]) for h in most_popular(media, limit=limit)]
        explain_recommendations(out, media, [])
        return out
    records = {r.id: r for r in media.retrieve([h.id for h in text_hits])}
    ranked = sorted(text_hits, key=lambda h: (-(records[h.id].payload.get("popularity") or 0.0), -h.score))
    out = []
    for h in ranked[:limit]:
        p: MediaPayload = records[h.id].payload
        out.append(
            Recommendation(
                id=h.id,
                item=p.get("item"),
                path=p.get("path"),
                score=float(p.get("popularity") or 0.0),
                branches=["popular", "text"],
                kind=p.get("kind"),
            )
        )
    explain_recommendations(out, media, [])
    return out


def similar_items(media: VectorStore, item_id: str, *, by: str = "content", limit: int = 10) -> list[Recommendation]:
    """Items like ``item_id`` by ``content`` (cosine of fused vectors), ``cf`` (cosine of factors) or ``both`` (RRF)."""
    if by not in ("content", "cf", "both"):
        raise EmbedderError(f"--by must be content, cf or both, not '{by}'")
    found = media.retrieve([item_id], with_vectors=["content", "cf_sim"])
    if not found:
        raise EmbedderError(f"item {item_id} is not in the collection")
    vectors = found[0].vectors
    specs = {}
    if by in ("content", "both") and "content" in vectors:
        specs["content"] = Nearest(vectors["content"], "content")
    if by in ("cf", "both") and "cf_sim" in vectors:
        specs["cf"] = Nearest(vectors["cf_sim"], "cf_sim")
    if not specs:
        have = "media (content)" if "content" in vectors else "interactions (cf)"
        raise EmbedderError(f"item {item_id} has no {by} vector; it only has {have}")
    exclude = [item_id]
    per = {n: media.search(s, limit=limit * BRANCH_DEPTH, exclude_ids=exclude) for n, s in specs.items()}
    if len(specs) == 1:
        ((name, hits),) = per.items()
        out = [_rec(h, [name]) for h in hits[:limit]]
        if name == "content":
            _content_contributions(out, media, vectors["content"])
        return out
    fused = media.fused([(s, limit * BRANCH_DEPTH) for s in specs.values()], limit=limit, exclude_ids=exclude)
    ids = {n: {h.id for h in hits} for n, hits in per.items()}
    return [_rec(h, [n for n in specs if h.id in ids[n]]) for h in fused]


def _content_contributions(items: list[Recommendation], media: VectorStore, content) -> None:
    """Per-modality parts of each item's content cosine to ``content`` (they add up to its score)."""
    from embedder.fusion import MODALITIES, block_contributions

    dims = {m: v for m, v in (media.collection_dims() or {}).items() if m in MODALITIES}
    found = {r.id: r for r in media.retrieve([r.id for r in items], with_vectors=["content"])}
    for rec in items:
        if rec.id in found and "content" in found[rec.id].vectors:
            rec.contributions = block_contributions(found[rec.id].vectors["content"], content, dims)


def similar_users(users: VectorStore, user: str, *, limit: int = 10) -> list[dict]:
    """Users whose taste vectors are closest (cosine) to ``user``'s."""
    if users.collection_dims() is None:
        raise EmbedderError("no user vectors yet; run 'embedder interactions train' first")
    found = users.retrieve([user_point_id(user)], with_vectors=True)
    if not found:
        raise EmbedderError(f"user '{user}' is not in the trained model (no positive interactions at training time)")
    hits = users.search(Nearest(found[0].vectors["cf"], "cf"), limit=limit, exclude_ids=[found[0].id])
    payloads: list[UserPayload] = [h.payload for h in hits]
    return [{"user": p.get("user"), "score": round(h.score, 6)} for p, h in zip(payloads, hits)]


def resolve_item_ref(media: VectorStore, ref: str) -> str:
    """A point id from an id, an ingested path, or an interaction item key."""
    import os

    from embedder.ids import item_point_id

    ids = resolve_items([ref, os.path.abspath(ref)], media)
    for key in (ref, os.path.abspath(ref)):
        if media.retrieve([ids[key]]):
            return ids[key]
    if media.retrieve([item_point_id(ref)]):
        return item_point_id(ref)
    raise EmbedderError(f"'{ref}' is neither an ingested item (id or path) nor an item from the interaction log")


__all__ = [
    "Recommendation",
    "RecommendResult",
    "explain_recommendations",
    "recommend_for_user",
    "most_popular",
    "popular_items",
    "similar_items",
    "similar_users",
    "resolve_item_ref",
]
