"""Fit a collaborative model on events and store it where ``recommend`` reads it."""

from __future__ import annotations

from embedder.recommend.interactions import Interaction

CF_MODELS = ("als", "bpr")  # implicit's factor models; the item-to-item kinds are itemitem.KINDS


def fit_and_store(name: str, params, events: list[Interaction], media, users, seed: int = 0) -> dict:
    """Fit ``name`` on ``events`` with ``params`` and store it: ``cf`` (ALS, what ``--auto``
    calls it), ``als`` or ``bpr`` as the items' ``cf`` vectors and the users' vectors (``params``
    a :class:`~embedder.recommend.cf.CFParams`), an item-to-item kind as the items' sparse vectors
    (``params`` an :class:`~embedder.recommend.itemitem.ItemItemParams`). Returns what was stored
    (the writer's summary, with the factor models' settings)."""
    if name in ("cf", *CF_MODELS):
        from embedder.recommend.cf import fit_cf, write_cf

        model = "als" if name == "cf" else name
        summary = write_cf(fit_cf(events, params, model=model, seed=seed), media, users)
        return {**summary, "settings": params.to_dict()}
    from embedder.recommend.itemitem import fit_item_item
    from embedder.recommend.sparse import write_item_item

    return write_item_item(fit_item_item(events, params), media)


__all__ = ["CF_MODELS", "fit_and_store"]
