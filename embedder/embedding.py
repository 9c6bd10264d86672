"""The decode, encode and fuse stages for one item or a group: the one code path that ingest,
``search --like`` (a new file) and re-embedding share.

Decoding runs in an isolated worker process (a crashing decoder takes only the worker down);
ingest decodes many files in parallel with the same :func:`decode_options` and
:func:`~embedder.media.decode.decode_item`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from embedder.fusion import MODALITIES, fuse

if TYPE_CHECKING:
    from embedder.settings import Settings


@dataclass
class ItemVectors:
    """Pooled unit vectors per modality (``None`` when absent) and the fused content vector."""

    visual: np.ndarray | None
    audio: np.ndarray | None
    text: np.ndarray
    content: np.ndarray

    def named(self) -> dict[str, np.ndarray]:
        """The named vectors to store (absent modalities are left out, not zero-filled)."""
        out = {"text": self.text, "content": self.content}
        if self.visual is not None:
            out["visual"] = self.visual
        if self.audio is not None:
            out["audio"] = self.audio
        return out


def decode_options(settings: Settings, encoders):
    """How files are decoded for these encoders (frames resized to the visual encoder's size)."""
    from embedder.media.decode import DecodeOptions

    return DecodeOptions.from_settings(settings, image_size=encoders.image_size)


def decode_file(path: str, settings: Settings, encoders):
    """Decode one file in an isolated worker; raises :class:`~embedder.errors.MediaError` naming
    the file and the stage."""
    from embedder.media.decode import decode_item
    from embedder.media.isolation import run_isolated

    return run_isolated(decode_item, (path, decode_options(settings, encoders)), path=path, stage="decode",
                        timeout_s=settings.decode_timeout_s)


def encode_items(items: list, encoders, batch_size: int = 32, modalities=MODALITIES) -> list[dict[str, np.ndarray]]:
    """Encode decoded items block by block, in shared batches: modality -> pooled unit vector,
    per item, for the ``modalities`` asked for and present in the item."""
    out: list[dict[str, np.ndarray]] = [{} for _ in items]
    for modality in modalities:
        for i, vector in encoders[modality].encode_items(items, batch_size).items():
            out[i][modality] = vector
    return out


def embed_items(items: list, encoders, weights: dict[str, float], batch_size: int = 32) -> list[ItemVectors]:
    """Encode a group of :class:`~embedder.media.decode.DecodedItem`, then fuse each item's blocks."""
    dims = encoders.dims
    out = []
    for vecs in encode_items(items, encoders, batch_size):
        out.append(ItemVectors(visual=vecs.get("visual"), audio=vecs.get("audio"), text=vecs["text"],
                               content=fuse(vecs, dims, weights)))
    return out
