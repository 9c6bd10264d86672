"""Personalised search: relevance to the query first, then re-ranked by who is asking.

The blend, for each of the ``limit * POOL_DEPTH`` most relevant items of the plain search:

* ``taste = mean of the signals the user has``:
  - ``cf``: cosine between the user's ``cf`` vector and the item's factors (``cf_sim``), when
    both exist (the user was in the last 'interactions train', the item has interactions);
  - ``recent``: cosine between the item's ``content`` vector and the nearest of the user's
    recent positive items (the last 20 positives of the interaction log).
* ``personal score = score + personal_weight * std(score) * (taste - mean(taste)) / std(taste)``,
  means and spreads over the candidates (setting ``personal_weight``, default 1): one spread of
  taste is worth ``personal_weight`` spreads of relevance. Measuring taste against its own
  spread makes the weight mean the same whatever the encoders' cosines look like (random-weight
  and trained models spread their cosines very differently). The hits are ordered by it; the
  query's own ``score`` and its explanation stay as they were.
* Items the user has already seen are placed after the unseen ones (``seen="demote"``), dropped
  (``"exclude"``) or left where the blend puts them (``"keep"``).

A user with no history and no ``cf`` vector gets the plain search exactly: same items, order
and scores, with no ``personal`` part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedder.errors import EmbedderError
from embedder.ids import user_point_id
from embedder.store import VectorStore

POOL_DEPTH = 5  # the plain search fetches limit * this candidates for re-ranking
SEEN_CHOICES = ("demote", "exclude", "keep")


def check_seen(seen: str) -> None:
    """Refuse an unknown ``--seen`` choice (before any search work is done)."""
    if seen not in SEEN_CHOICES:
        raise EmbedderError(f"--seen must be one of {', '.join(SEEN_CHOICES)}, not '{seen}'")


@dataclass
class Taste:
    """What a user's taste is made of: their cf vector and recent positive items' content."""

    user: str
    cf: np.ndarray | None
    positives: dict[str, np.ndarray]  # point id -> content vector, most recent first
    positive_paths: dict[str, str | None]
    seen: set[str]

    @property
    def empty(self) -> bool:
        return self.cf is None and not self.positives


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def read_taste(user: str, history: list, media: VectorStore, users: VectorStore | None) -> Taste:
    """The user's taste from their events (oldest first) and stored vectors (``user`` as stored)."""
    from embedder.recommend.queries import history_ids

    positives, _, seen = history_ids(history, media) if history else ([], [], [])
    cf = None
    if users is not None and users.has_vector("cf"):
        found = users.retrieve([user_point_id(user)], with_vectors=["cf"])
        if found and "cf" in found[0].vectors:
            cf = _unit(found[0].vectors["cf"])
    records = {r.id: r for r in media.retrieve(positives, with_vectors=["content"])} if positives else {}
    content = {
        i: _unit(records[i].vectors["content"]) for i in positives if i in records and "content" in records[i].vectors
    }
    paths = {i: records[i].payload.get("path") for i in content}
    return Taste(user=user, cf=cf, positives=content, positive_paths=paths, seen=set(seen))


def personalise(
    hits: list, taste: Taste, media: VectorStore, *, weight: float, limit: int, seen: str = "demote"
) -> list:
    """Re-rank search hits (:class:`embedder.search.SearchHit`, most relevant first) for a user.

    Each re-ranked hit gains ``personal``: ``{"score", "taste", "taste_z", "relevance_spread",
    "weight", "cf", "recent", "nearest_liked", "seen"}``, so that ``score = hit.score + weight *
    relevance_spread * taste_z``. With an empty taste the hits come back unchanged (the first ``limit``).
    """
    check_seen(seen)
    if taste.empty or not hits:
        return hits[:limit]
    records = {r.id: r for r in media.retrieve([h.id for h in hits], with_vectors=["content", "cf_sim"])}
    liked_ids = list(taste.positives)
    liked = np.stack([taste.positives[i] for i in liked_ids]) if liked_ids else None
    signals_of = []
    for hit in hits:
        vectors = records[hit.id].vectors if hit.id in records else {}
        signals: dict = {"cf": None, "recent": None, "nearest_liked": None}
        if taste.cf is not None and "cf_sim" in vectors:
            signals["cf"] = round(float(_unit(vectors["cf_sim"]) @ taste.cf), 6)
        if liked is not None and "content" in vectors:
            sims = liked @ _unit(vectors["content"])
            k = int(np.argmax(sims))
            signals["recent"] = round(float(sims[k]), 6)
            signals["nearest_liked"] = {
                "id": liked_ids[k],
                "path": taste.positive_paths.get(liked_ids[k]),
                "similarity": round(float(sims[k]), 6),
            }
        present = [v for v in (signals["cf"], signals["recent"]) if v is not None]
        signals_of.append((round(float(np.mean(present)), 6) if present else None, signals))
    known = [t for t, _ in signals_of if t is not None]
    centre = float(np.mean(known)) if known else 0.0
    spread = float(np.std(known)) if len(known) > 1 else 0.0
    relevance_spread = max(float(np.std([h.score for h in hits])), 1e-6)
    for hit, (value, signals) in zip(hits, signals_of):
        # An item without any signal (no content, no cf) is neither pushed up nor down.
        z = (value - centre) / spread if value is not None and spread > 1e-9 else 0.0
        hit.personal = {
            "score": round(hit.score + weight * relevance_spread * z, 6),
            "taste": value,
            "taste_z": round(z, 6),
            "relevance_spread": round(relevance_spread, 6),
            "weight": weight,
            **signals,
            "seen": hit.id in taste.seen,
        }
    ranked = sorted(hits, key=lambda h: -h.personal["score"])  # stable: equal blends keep relevance order
    if seen == "exclude":
        ranked = [h for h in ranked if not h.personal["seen"]]
    elif seen == "demote":
        ranked = [h for h in ranked if not h.personal["seen"]] + [h for h in ranked if h.personal["seen"]]
    return ranked[:limit]


__all__ = ["POOL_DEPTH", "SEEN_CHOICES", "Taste", "check_seen", "personalise", "read_taste"]
