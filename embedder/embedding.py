"""Decoded items -> modality vectors -> fused content vector (the encode and fuse stages)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedder.fusion import fuse, pool


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


def embed_items(items: list, encoders, weights: dict[str, float], batch_size: int = 32) -> list[ItemVectors]:
    """Encode a group of :class:`~embedder.media.decode.DecodedItem` in shared batches, then fuse.

    Frames of all items go through CLIP together and audio windows through CLAP together, so a
    batch fills with many short files; results are split back per item and pooled.
    """
    with_frames = [i for i, item in enumerate(items) if item.frames is not None]
    with_audio = [i for i, item in enumerate(items) if item.audio is not None]
    frame_vecs = encoders.clip.encode_frame_sets([items[i].frames.frames for i in with_frames], batch_size)
    windows = [w for i in with_audio for w in items[i].audio.windows]
    audio_flat = encoders.clap.encode_audio(windows, batch_size=max(1, batch_size // 2)) if windows else None
    text_vecs = encoders.clip.encode_texts([item.text.text for item in items])

    visual: dict[int, np.ndarray] = {i: pool(v) for i, v in zip(with_frames, frame_vecs)}
    audio: dict[int, np.ndarray] = {}
    start = 0
    for i in with_audio:
        n = len(items[i].audio.windows)
        audio[i] = pool(audio_flat[start : start + n])
        start += n
    dims = encoders.dims
    out = []
    for i in range(len(items)):
        vecs = {"visual": visual.get(i), "audio": audio.get(i), "text": text_vecs[i]}
        out.append(ItemVectors(visual=vecs["visual"], audio=vecs["audio"], text=text_vecs[i], content=fuse(vecs, dims, weights)))
    return out
