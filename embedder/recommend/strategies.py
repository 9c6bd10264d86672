"""Recommendation strategies: one registry that ``recommend``, ``eval`` and the CLI help all read.

A strategy is the set of query branches it runs for a user; the branches themselves (how a
``cf``, ``trained`` or ``content`` branch becomes a Qdrant query, and how several are fused) live
in :mod:`embedder.recommend.queries`. A strategy without branches ranks by popularity.

Adding a strategy made of existing branches is one entry here; a new kind of branch is one entry
in :data:`BRANCH_VECTORS` (a user vector searched against the items' vector of the same name) or
a few lines in ``queries.recommend_for_user`` (anything else).
"""

from __future__ import annotations

from dataclasses import dataclass

from embedder.errors import EmbedderError
from embedder.store.base import SPARSE_VECTORS

# Branches that search the media collection with a vector of the user's (users collection) in
# the items' vector space of the same name.
BRANCH_VECTORS = {"cf": "cf", "trained": "rec"}
# The branch that needs no user vector: Qdrant's recommend query on the content vectors of the
# user's recent positives (and negatives).
CONTENT_BRANCH = "content"
# Branches that query the items' sparse vector of the same name with the user's positives: the
# item-to-item models (embedder.recommend.itemitem), scored exactly by Qdrant's sparse dot product.
SPARSE_BRANCHES = SPARSE_VECTORS


@dataclass(frozen=True)
class Strategy:
    """A named way to recommend: the branches it runs, and the names it also answers to."""

    name: str
    summary: str  # one line, for --help and reports
    branches: tuple[str, ...]  # () ranks by popularity
    aliases: tuple[str, ...] = ()  # older names still accepted on input
    needs_content: bool = False  # runs only where items have content vectors (media)

    @property
    def user_vectors(self) -> tuple[str, ...]:
        """The users collection's vectors this strategy reads."""
        return tuple(BRANCH_VECTORS[b] for b in self.branches if b in BRANCH_VECTORS)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "hybrid",
            "a collaborative model (ALS by default, or the one train --auto chose) and content fused in one "
            "query (weighted RRF or DBSF: the hybrid_* settings, tuned by eval --tune), new media found by content",
            ("cf", CONTENT_BRANCH),
            needs_content=True,
        ),
        Strategy("cf", "collaborative filtering: items nearest the user's ALS factors", ("cf",), aliases=("als",)),
        Strategy(
            "content",
            "items like the user's recent positives, by content vectors",
            (CONTENT_BRANCH,),
            needs_content=True,
        ),
        Strategy(
            "words",
            "items whose words (title, tags, genres, transcript) match the words of the user's positives: "
            "BM25 in a Qdrant sparse query",
            ("words",),
            needs_content=True,
        ),
        Strategy(
            "ease",
            "EASE item-to-item weights (Steck 2019) over the user's positives, a Qdrant sparse query",
            ("ease",),
        ),
        Strategy(
            "rp3beta",
            "RP3beta random-walk item-to-item weights over the user's positives, a Qdrant sparse query",
            ("rp3beta",),
            aliases=("rp3",),
        ),
        Strategy(
            "itemknn",
            "item-kNN cosine weights over the user's positives, a Qdrant sparse query",
            ("itemknn",),
            aliases=("item-knn", "knn"),
        ),
        Strategy("trained", "the fine-tuned two-tower head ('embedder train')", ("trained",)),
        Strategy("popular", "the most-interacted items the user has not seen", (), aliases=("popularity",)),
    )
}


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name`` (or one of its aliases).

    Raises:
        EmbedderError: one line listing the strategies.
    """
    for strategy in STRATEGIES.values():
        if name == strategy.name or name in strategy.aliases:
            return strategy
    raise EmbedderError(f"unknown strategy '{name}'; choose from {', '.join(STRATEGIES)}")


def strategies_help() -> str:
    """``name: summary`` for every strategy, for a CLI option's help."""
    return "; ".join(f"{s.name}: {s.summary}" for s in STRATEGIES.values()) + "."
