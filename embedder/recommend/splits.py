"""Ranking metrics and train/test splits of an interaction log (no store, no model: pure functions).

Two recall variants are reported, because papers and tools differ: ``recall@K`` divides the hits
by the number of relevant items; ``hr_recall@K`` by ``min(K, relevant)``, so a user with more
relevant items than K can still reach 1.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

from embedder.errors import EmbedderError
from embedder.recommend.interactions import Interaction

SPLITS = ("leave-last-out", "random-holdout", "time", "cold-items")


def recall_at_k(ranked: list[str], relevant: set[str], k: int) -> float:
    """Share of the relevant items found in the top ``k``."""
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / len(relevant)


def hr_recall_at_k(ranked: list[str], relevant: set[str], k: int) -> float:
    """Hits in the top ``k`` over ``min(k, |relevant|)``: the best possible list scores 1."""
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / min(k, len(relevant))


def ndcg_at_k(ranked: list[str], relevant: set[str], k: int) -> float:
    """Binary-relevance NDCG: DCG of the top ``k`` over the DCG of a perfect list."""
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def coverage(lists: list[list[str]], catalogue_size: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list."""
    if catalogue_size == 0:
        return 0.0
    return len({item for ranked in lists for item in ranked[:k]}) / catalogue_size


@dataclass
class Split:
    train: list[Interaction]
    test: list[Interaction]
    candidates: set[str] | None = None  # items a method may rank (cold-items: the held-out ones)
    name: str = ""


def users_to_score(
    train: list[Interaction], test: list[Interaction], max_users: int | None = None, seed: int = 0
) -> tuple[dict[str, list[Interaction]], dict[str, set[str]], list[str]]:
    """``(history, relevant, users)`` for scoring a split: each user's training events in order,
    their positive held-out items, and the users who have both (a seeded sample of
    ``max_users`` of them when there are more)."""
    history: dict[str, list[Interaction]] = defaultdict(list)
    for e in train:
        history[e.user].append(e)
    relevant: dict[str, set[str]] = defaultdict(set)
    for e in test:
        if e.weight > 0:
            relevant[e.user].add(e.item)
    users = sorted(u for u in relevant if history.get(u))
    if max_users and len(users) > max_users:
        users = sorted(random.Random(seed).sample(users, max_users))
    return history, relevant, users


def split_events(
    events: list[Interaction],
    how: str,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    items_with_content: set[str] | None = None,
) -> Split:
    """Split a log (events in time order) into train and test, deterministically for a seed.

    * ``leave-last-out``: each user's last positive event (by time, else by import order) is test.
    * ``random-holdout``: a seeded random ``test_fraction`` of each user's positive items is test
      (for logs whose order means nothing, such as Last.fm's, sorted by artist id).
    * ``time``: the latest ``test_fraction`` of events (by time) is test.
    * ``cold-items``: ``test_fraction`` of the items (of those with content, when there are any)
      are held out with all their events; methods rank among them only.
    """
    if how not in SPLITS:
        raise EmbedderError(f"--split must be one of {', '.join(SPLITS)}, not '{how}'")
    if how == "leave-last-out":
        last: dict[str, int] = {}
        for i, e in enumerate(events):
            if e.weight > 0:
                last[e.user] = i
        counts = defaultdict(int)
        for e in events:
            if e.weight > 0:
                counts[e.user] += 1
        held = {i for u, i in last.items() if counts[u] >= 2}  # keep at least one event to learn from
        return Split([e for i, e in enumerate(events) if i not in held], [events[i] for i in sorted(held)], name=how)
    if how == "random-holdout":
        rng = random.Random(seed)
        by_user: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(events):
            if e.weight > 0:
                by_user[e.user].append(i)
        held = set()
        for user in sorted(by_user):
            idx = by_user[user]
            if len(idx) >= 2:
                held.update(rng.sample(idx, max(1, min(len(idx) - 1, round(len(idx) * test_fraction)))))
        return Split([e for i, e in enumerate(events) if i not in held], [events[i] for i in sorted(held)], name=how)
    if how == "time":
        if any(e.ts is None for e in events):
            raise EmbedderError("the time split needs timestamps on every event; use --split leave-last-out")
        cut = int(len(events) * (1 - test_fraction))
        return Split(events[:cut], events[cut:], name=how)
    pool = sorted(items_with_content) if items_with_content else sorted({e.item for e in events})
    rng = random.Random(seed)
    held = set(rng.sample(pool, max(1, int(len(pool) * test_fraction))))
    return Split([e for e in events if e.item not in held], [e for e in events if e.item in held], held, name=how)
