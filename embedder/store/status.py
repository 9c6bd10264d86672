"""What ``embedder status`` shows of a collection, counted by the engine."""

from __future__ import annotations

from embedder.fusion import MODALITIES
from embedder.store.base import VectorStore


def collection_status(store: VectorStore) -> dict:
    """Back-end, collection, item counts per kind and modality, models and size."""
    info = store.info()
    if info["exists"]:
        info["modalities"] = {m: store.count({"modalities": m}) for m in MODALITIES}
        info["kinds"] = {k: store.count({"kind": k}) for k in ("video", "audio")}
        info["models"] = _models_in_use(store)
    return info


def _models_in_use(store: VectorStore) -> dict[str, list[str]]:
    """modality -> the model ids its stored vectors came from, counted by the engine (facets on
    indexed keys); a collection made before those keys were indexed is read through once."""
    found: dict[str, list[str]] = {}
    for modality in MODALITIES:
        counts = store.facet(f"models.{modality}")
        if counts is None:
            break
        if counts:
            found[modality] = sorted(counts)
    else:
        return found
    models: dict[str, set[str]] = {}
    for record in store.scroll():
        for modality, model in (record.payload.get("models") or {}).items():
            models.setdefault(modality, set()).add(model)
    return {m: sorted(v) for m, v in models.items()}
