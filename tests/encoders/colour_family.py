"""A model family written for the test of the encoder registry: a colour histogram of the frames.

It needs no torch and has no weights, and it is a real (if crude) visual encoder: frames with
the same colours get the same vector. Registered by the test in ``registry.MODELS`` and
``registry.FAMILIES``; nothing else in embedder names it.
"""

from __future__ import annotations

import numpy as np

from embedder.encoders.base import ModalityEncoder

BINS = 4  # per channel: 64 dimensions


class ColourHistogram:
    def __init__(self, spec):
        self.spec = spec

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        q = (frames.astype(np.int64) * BINS) // 256  # N x H x W x 3 -> bin per channel
        codes = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
        out = np.stack([np.bincount(c.ravel(), minlength=BINS**3) for c in codes]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError("a colour histogram cannot read text")


class ColourVisual(ModalityEncoder):
    modality = "visual"

    def encode_units(self, items, batch_size: int = 32) -> dict[int, np.ndarray]:
        # Every sampled frame (the item's, then the extra ones its segments needed), one vector each.
        return {
            i: self.model.encode_frames(item.frames.frames) for i, item in enumerate(items) if item.frames is not None
        }

    def item_units(self, item) -> int:
        return len(item.frames.item_frames)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        # Queries by colour name would go here; this family answers only "more like this".
        return np.full((len(texts), self.dim), 1 / np.sqrt(self.dim), np.float32)


def load_blocks(spec, device, weights_dir) -> dict[str, ModalityEncoder]:
    return {"visual": ColourVisual(ColourHistogram(spec))}
