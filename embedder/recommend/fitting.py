"""Fit a collaborative model on events and store it where ``recommend`` reads it."""

from __future__ import annotations

from embedder.recommend.interactions import Interaction


def fit_and_store(name: str, params, events: list[Interaction], media, users, seed: int = 0) -> dict:
    """Fit ``name`` (``cf`` or an item-to-item kind) on ``events`` with ``params`` and store it:
    ALS as the items' ``cf`` vectors and the users' vectors, an item-to-item model as the items'
    sparse vectors. Returns what was stored (the writer's summary)."""
    if name == "cf":
        from embedder.recommend.cf import fit_cf, write_cf

        summary = write_cf(fit_cf(events, params, seed=seed), media, users)
        return {**summary, "settings": params.to_dict()}
    from embedder.recommend.itemitem import fit_item_item
    from embedder.recommend.sparse import write_item_item

    return write_item_item(fit_item_item(events, params), media)


__all__ = ["fit_and_store"]
