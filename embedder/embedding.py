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

from embedder.fusion import MODALITIES, fuse, pool

if TYPE_CHECKING:
    from embedder.settings import Settings


@dataclass
class ItemVectors:
    """Pooled unit vectors per modality (``None`` when absent), the fused content vector, and one
    fused content vector per segment (S x content dim) when the item was cut into segments."""

    visual: np.ndarray | None
    audio: np.ndarray | None
    text: np.ndarray
    content: np.ndarray
    segments: np.ndarray | None = None

    def named(self) -> dict[str, np.ndarray]:
        """The named vectors to store (absent modalities are left out, not zero-filled)."""
        out = {"text": self.text, "content": self.content}
        if self.visual is not None:
            out["visual"] = self.visual
        if self.audio is not None:
            out["audio"] = self.audio
        if self.segments is not None:
            out["segments"] = self.segments
        return out


def decode_options(settings: Settings, encoders=None):
    """How files are decoded for these encoders (frames resized to the visual encoder's size; the
    configured one's when ``encoders`` is ``None``: a decode for words alone loads no model)."""
    from embedder.encoders.bundle import configured_image_size
    from embedder.media.decode import DecodeOptions

    size = encoders.image_size if encoders is not None else configured_image_size(settings)
    return DecodeOptions.from_settings(settings, image_size=size)


def decode_file(path: str, settings: Settings, encoders):
    """Decode one file in an isolated worker; raises :class:`~embedder.errors.MediaError` naming
    the file and the stage."""
    from embedder.media.decode import decode_item
    from embedder.media.isolation import run_isolated

    return run_isolated(
        decode_item,
        (path, decode_options(settings, encoders)),
        path=path,
        stage="decode",
        timeout_s=settings.decode_timeout_s,
    )


def encode_items(
    items: list, encoders, batch_size: int | str = "auto", modalities=MODALITIES
) -> list[dict[str, np.ndarray]]:
    """Encode decoded items block by block, in shared batches: modality -> pooled unit vector,
    per item, for the ``modalities`` asked for and present in the item."""
    out: list[dict[str, np.ndarray]] = [{} for _ in items]
    for modality in modalities:
        for i, vector in encoders[modality].encode_items(items, batch_size).items():
            out[i][modality] = vector
    return out


def embed_items(items: list, encoders, weights: dict[str, float], batch_size: int | str = "auto") -> list[ItemVectors]:
    """Encode a group of :class:`~embedder.media.decode.DecodedItem`, then fuse each item's blocks,
    and each segment's blocks for items cut into segments.

    Every frame, window and text is encoded once: the item's vectors pool its own units, and a
    segment's vectors pool the units under it (:mod:`embedder.media.segments`), so moments cost
    only the extra frames and windows of segments the item's samples missed, and their texts.
    """
    dims = encoders.dims
    units = {m: encoders[m].encode_units(items, batch_size) for m in MODALITIES}
    out = []
    for i, item in enumerate(items):
        pooled: dict[str, np.ndarray] = {}
        for m in ("visual", "audio"):
            if i in units[m]:
                pooled[m] = pool(units[m][i][: encoders[m].item_units(item)])
        pooled["text"] = units["text"][i][0]
        segments = None
        if item.segments:
            segments = np.stack(
                [fuse(_segment_blocks(units, i, k, segment), dims, weights) for k, segment in enumerate(item.segments)]
            )
        out.append(
            ItemVectors(
                visual=pooled.get("visual"),
                audio=pooled.get("audio"),
                text=pooled["text"],
                content=fuse(pooled, dims, weights),
                segments=segments,
            )
        )
    return out


def _segment_blocks(units: dict[str, dict[int, np.ndarray]], i: int, k: int, segment) -> dict[str, np.ndarray]:
    """Segment ``k`` of item ``i``: its frames and windows pooled, and its own text."""
    blocks = {"text": units["text"][i][1 + k]}
    if segment.frames and i in units["visual"]:
        blocks["visual"] = pool(units["visual"][i][segment.frames])
    if segment.windows and i in units["audio"]:
        blocks["audio"] = pool(units["audio"][i][segment.windows])
    return blocks
