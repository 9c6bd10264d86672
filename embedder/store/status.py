"""What ``embedder status`` shows of a collection, counted by the engine."""

from __future__ import annotations

from embedder.errors import EmbedderError
from embedder.fusion import MODALITIES
from embedder.store.base import VectorStore


def collection_status(store: VectorStore) -> dict:
    """Back-end, collection, item counts per kind and modality, models and size."""
    info = store.info()
    if info["exists"]:
        info["modalities"] = {m: store.count({"modalities": m}) for m in MODALITIES}
        # "item": known from interactions (or a catalogue) alone, so the kinds add up to the points.
        info["kinds"] = {k: store.count({"kind": k}) for k in ("video", "audio", "item")}
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


def check_models(store: VectorStore, model_ids: dict[str, str], writing: bool = False) -> None:
    """Refuse to mix models in one collection, for queries and writes alike.

    Two models of the same size (two ViT-B-32 checkpoints) give vectors Qdrant accepts but whose
    scores mean nothing together. The collection's models come from its points' provenance
    (``models`` in the payload), counted by the engine, so the check costs a few small reads.
    A blue-green rebuild writes the other models into a new, empty version, which passes.

    Raises:
        EmbedderError: naming the modality, the collection's models and the configured one.
    """
    if store.collection_dims() is None:
        return
    for modality, ids in sorted(_models_in_use(store).items()):
        wanted = model_ids.get(modality)
        others = sorted(set(ids) - {wanted}) if wanted else []
        if not others:
            continue
        name = store.logical or store.collection
        if writing:
            raise EmbedderError(
                f"refusing to write {modality} vectors of {wanted} into collection '{name}', which holds "
                f"{modality} vectors of {', '.join(others)}: configure the collection's models (EMBEDDER_MODELS, "
                "EMBEDDER_CLIP_MODEL, EMBEDDER_CLAP_MODEL), or 'embedder reembed' to rebuild it into a new version"
            )
        raise EmbedderError(
            f"collection '{name}' holds {modality} vectors of {', '.join(ids)}, but the configured model is {wanted}: "
            "configure the collection's models (EMBEDDER_MODELS, EMBEDDER_CLIP_MODEL, EMBEDDER_CLAP_MODEL), "
            "or rebuild it with 'embedder reembed'"
        )
