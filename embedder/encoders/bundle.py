"""The encoders a run uses, keyed by content block (modality), chosen from settings."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from embedder.encoders.registry import FAMILIES, ModelSpec, modality_specs
from embedder.fusion import MODALITIES

if TYPE_CHECKING:
    from embedder.settings import Settings


class Encoders(Mapping):
    """modality -> :class:`~embedder.encoders.base.ModalityEncoder` for every content block."""

    def __init__(self, blocks: dict):
        missing = [m for m in MODALITIES if m not in blocks]
        if missing:
            raise ValueError(f"no encoder for {', '.join(missing)}")
        self._blocks = {m: blocks[m] for m in MODALITIES}

    def __getitem__(self, modality: str):
        return self._blocks[modality]

    def __iter__(self):
        return iter(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def dims(self) -> dict[str, int]:
        """Sizes of the content-side named vectors (``cf`` is added by the collection schema)."""
        return with_content({m: enc.dim for m, enc in self._blocks.items()})

    @property
    def model_ids(self) -> dict[str, str]:
        """The model id behind each modality's vectors (the provenance stored on points)."""
        return {m: enc.model_id for m, enc in self._blocks.items()}

    @property
    def device(self) -> str:
        """Where the visual block's model runs (``cpu``, ``cuda``, ``cuda:1``); a family whose
        models do not say runs on the CPU."""
        return getattr(self._blocks["visual"].model, "device", "cpu")

    @property
    def image_size(self) -> int:
        """The frame size the visual encoder wants (decoders resize to it)."""
        return self._blocks["visual"].image_size

    @property
    def models(self) -> list:
        """The distinct loaded models (one may serve several blocks)."""
        return list({id(enc.model): enc.model for enc in self._blocks.values()}.values())

    def quantize_queries(self) -> dict[str, bool]:
        """Give every model that can an int8 copy of its text tower for queries (CPU only); items
        are still encoded in full precision. Returns model id -> whether it was quantised."""
        done = {}
        for model in self.models:
            quantize = getattr(model, "quantize_queries", None)
            done[model.spec.model_id] = bool(quantize()) if quantize is not None else False
        return done

    def encode_query(self, text: str) -> dict[str, object]:
        """A query text in every block's space: modality -> unit vector (one encode per model)."""
        return self.encode_queries([text])[0]

    def encode_queries(self, texts: list[str]) -> list[dict[str, object]]:
        """Several query texts, one batch per distinct model (see :meth:`encode_query`)."""
        by_model: dict[int, object] = {}
        out: list[dict] = [{} for _ in texts]
        for m, enc in self._blocks.items():
            key = id(enc.model)
            if key not in by_model:
                by_model[key] = enc.encode_text(list(texts))
            for row, vector in zip(out, by_model[key]):
                row[m] = vector
        return out


def with_content(block_dims: dict[str, int]) -> dict[str, int]:
    """Block sizes plus ``content``, their concatenation."""
    return {**block_dims, "content": sum(block_dims[m] for m in MODALITIES)}


def modality_model_ids(specs: dict[str, ModelSpec]) -> dict[str, str]:
    """modality -> model id, from the specs :func:`~embedder.encoders.registry.modality_specs` chose."""
    return {m: spec.model_id for m, spec in specs.items()}


def configured_model_ids(settings: Settings) -> dict[str, str]:
    """The model ids ``settings`` name for each modality, without loading anything."""
    return modality_model_ids(modality_specs(settings))


def configured_image_size(settings: Settings) -> int:
    """The frame size the configured visual encoder wants, without loading it."""
    return modality_specs(settings)["visual"].image_size or 224


def modality_dims(specs: dict[str, ModelSpec]) -> dict[str, int]:
    """Vector sizes per named vector; ``content`` is the concatenation of the blocks."""
    return with_content({m: spec.dim for m, spec in specs.items()})


def schema_for(settings: Settings) -> dict[str, int]:
    """The media collection's named vectors for these settings: the content side; CF item
    factors as ``cf`` (dot product: what the model predicts for a user) and ``cf_sim`` (cosine:
    item-to-item); ``rec``, the trained two-tower head's item vectors (dot product); and
    ``segments``, the moments' content vectors."""
    cf = settings.cf_factors
    content = modality_dims(modality_specs(settings))
    # "segments": one content vector per moment of an item (a MaxSim multivector), when segmenting.
    moments = {"segments": content["content"]} if settings.segments else {}
    return {**content, "cf": cf, "cf_sim": cf, "rec": settings.rec_dim, **moments}


def users_schema(settings: Settings) -> dict[str, int]:
    """The users collection's named vectors: CF user factors and the trained head's user vectors."""
    return {"cf": settings.cf_factors, "rec": settings.rec_dim}


def load_encoders(settings: Settings) -> Encoders:
    """Load every block's model on the configured device, each model once (slow: seconds for
    real weights)."""
    specs = modality_specs(settings)
    loaded: dict[str, dict] = {}
    blocks = {}
    for modality, spec in specs.items():
        if spec.name not in loaded:
            module = importlib.import_module(FAMILIES[spec.family].module)
            loaded[spec.name] = module.load_blocks(spec, settings.device, settings.weights_dir)
        blocks[modality] = loaded[spec.name][modality]
    return Encoders(blocks)
