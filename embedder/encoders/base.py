"""What every content block's encoder offers: the interface ingest, search and re-embedding use.

A block is one modality of the ``content`` vector (``visual``, ``audio``, ``text``). Its encoder
turns decoded items into one unit vector each, and turns query text into the same space, so a
text query can be compared with every block. One loaded model may serve several blocks (CLIP
serves ``visual`` and ``text``); each family module exposes ``load_blocks(spec, device,
weights_dir) -> {modality: ModalityEncoder}`` and is named in ``registry.FAMILIES``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class ModalityEncoder(ABC):
    """One block's encoder, wrapping a loaded model (``self.model``) that has ``spec`` and
    ``encode_texts``."""

    modality: str = ""

    def __init__(self, model):
        self.model = model

    @property
    def model_id(self) -> str:
        """The provenance stored on points (``family:arch/weights@version``)."""
        return self.model.spec.model_id

    @property
    def dim(self) -> int:
        return self.model.spec.dim

    @property
    def image_size(self) -> int:
        """Frame side in pixels the decoders should resize to (visual blocks)."""
        return self.model.spec.image_size or 224

    @abstractmethod
    def encode_units(self, items, batch_size: int | str = "auto") -> dict[int, np.ndarray]:
        """Every unit of this modality (frames, audio windows, texts) of each decoded item that has
        it, as an N_i x dim array of unit vectors, by position in ``items``: the item's own units
        first (:meth:`item_units` of them), then the extra units its segments needed.

        Items share batches, so many short files fill one batch.
        """

    def item_units(self, item) -> int:
        """How many of the item's units (the first ones) make its own vector."""
        return 1

    def encode_items(self, items, batch_size: int | str = "auto") -> dict[int, np.ndarray]:
        """One pooled unit vector per decoded item that has this modality, by position in ``items``."""
        from embedder.fusion import pool

        units = self.encode_units(items, batch_size)
        return {i: pool(u[: self.item_units(items[i])]) for i, u in units.items()}

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Query texts in this block's space (N x dim unit vectors): through the model's int8 query
        copy of its text tower when one was made (:func:`int8_text_tower`), else the model itself."""
        query_model = getattr(self.model, "query_model", None)
        return (
            self.model.encode_texts(texts, model=query_model)
            if query_model is not None
            else self.model.encode_texts(texts)
        )


def int8_text_tower(model, drop: str, cast_fix=None):
    """A copy of ``model`` without its ``drop`` tower, whose ``nn.Linear`` layers are int8 with
    dynamic activation quantisation (CPU only): text queries at about half the cost, with vectors
    within about 0.001 cosine of fp32 (benchmarks/serve). The original stays as it was, so items
    are always encoded in full precision."""
    import copy
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its successor
        from torch.ao.quantization import quantize_dynamic

        light = copy.copy(model)  # a shallow copy, so the dropped tower is not copied only to be freed
        light.__dict__["_modules"] = dict(model._modules)
        light._modules[drop] = torch.nn.Identity()
        light = quantize_dynamic(copy.deepcopy(light), {torch.nn.Linear}, dtype=torch.qint8)
    if cast_fix is not None:
        cast_fix(light)
    return light.eval()
