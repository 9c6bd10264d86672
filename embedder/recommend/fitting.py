"""Fit a collaborative model on events and store it where ``recommend`` reads it."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from embedder.recommend.interactions import Interaction

CF_MODELS = ("als", "bpr")  # implicit's factor models; the item-to-item kinds are itemitem.KINDS


def item_popularity(events: list[Interaction], min_items: int = 1) -> dict[str, int]:
    """How many users have positive events for each item, counting only users with positive
    events for at least ``min_items`` distinct items (the ``popularity_min_items`` setting)."""
    liked: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.weight > 0:
            liked[e.user].add(e.item)
    counts: dict[str, int] = defaultdict(int)
    for items in liked.values():
        if len(items) >= min_items:
            for item in items:
                counts[item] += 1
    return dict(counts)


def fit_and_store(
    name: str, params, events: list[Interaction], media, users, seed: int = 0, popularity_min_items: int = 1
) -> dict:
    """Fit ``name`` on ``events`` with ``params`` and store it: ``cf`` (ALS, what ``--auto``
    calls it), ``als`` or ``bpr`` as the items' ``cf`` vectors and the users' vectors (``params``
    a :class:`~embedder.recommend.cf.CFParams`), an item-to-item kind as the items' sparse vectors
    (``params`` an :class:`~embedder.recommend.itemitem.ItemItemParams`). Returns what was stored
    (the writer's summary, with the factor models' settings).

    Each item's stored ``popularity`` counts the users with at least ``popularity_min_items``
    liked items (all of them at 1)."""
    if name in ("cf", *CF_MODELS):
        from embedder.recommend.cf import fit_cf, write_cf

        model = "als" if name == "cf" else name
        fitted = with_popularity(fit_cf(events, params, model=model, seed=seed), events, popularity_min_items)
        return {**write_cf(fitted, media, users), "settings": params.to_dict()}
    from embedder.recommend.itemitem import fit_item_item
    from embedder.recommend.sparse import write_item_item

    return write_item_item(with_popularity(fit_item_item(events, params), events, popularity_min_items), media)


def with_popularity(model, events: list[Interaction], min_items: int):
    """``model`` (a fitted cf or item-to-item model) with the popularity it stores counted from
    the users with at least ``min_items`` liked items in ``events``."""
    if min_items <= 1:
        return model  # the fit counted every user already
    popularity = item_popularity(events, min_items)
    return dataclasses.replace(model, popularity={item: popularity.get(item, 0) for item in model.popularity})


__all__ = ["CF_MODELS", "fit_and_store", "item_popularity", "with_popularity"]
