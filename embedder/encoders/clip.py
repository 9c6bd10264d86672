"""CLIP (open_clip) for video frames and text."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from embedder.encoders.base import ModalityEncoder
from embedder.encoders.registry import ModelSpec
from embedder.encoders.runtime import (
    Batches,
    hub_online,
    inference_context,
    l2_normalise,
    resolve_device,
    seeded,
    to_device,
)
from embedder.errors import WeightsUnavailableError, one_line

CONFIG_DIR = Path(__file__).parent / "configs"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _local_weights(spec: ModelSpec, weights_dir: Path | None) -> Path | None:
    if weights_dir is None:
        return None
    for name in WEIGHT_FILES:
        candidate = Path(weights_dir) / spec.name / name
        if candidate.is_file():
            return candidate
    return None


def _cached_weights(spec: ModelSpec) -> Path | None:
    """The checkpoint from the Hugging Face cache, without touching the network."""
    import open_clip
    from huggingface_hub import hf_hub_download

    repo = (open_clip.get_pretrained_cfg(spec.arch, spec.weights) or {}).get("hf_hub", "").strip("/")
    for name in WEIGHT_FILES if repo else ():
        try:
            return Path(hf_hub_download(repo, name, local_files_only=True))
        except Exception:
            continue
    return None


def load_clip(spec: ModelSpec, device: str = "cpu", weights_dir: Path | None = None):
    """Build the open_clip model for ``spec``.

    Random-weight specs are built from their seed. Real ones load, in order, from
    ``weights_dir/<spec.name>/open_clip_model.safetensors``, then open_clip's cache or download
    (Hugging Face hub). open_clip loads checkpoints with ``weights_only=True``.

    Raises:
        WeightsUnavailableError: the weights are neither local nor downloadable.
    """
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)
    if spec.is_random:
        # open_clip logs a warning that random weights are used; here that is the point.
        logging.disable(logging.WARNING)
        try:
            with seeded(spec.seed):
                model = open_clip.create_model(spec.arch, pretrained=None, device=device)
        finally:
            logging.disable(logging.NOTSET)
        return model.eval()
    local = _local_weights(spec, weights_dir)
    online = local is not None or hub_online()
    if not online:
        local = _cached_weights(spec)
    try:
        if local is None and not online:
            raise FileNotFoundError("offline, and not in the Hugging Face cache")
        model = open_clip.create_model(spec.arch, pretrained=str(local) if local else spec.weights, device=device)
    except Exception as exc:  # network errors, missing files and hub errors all mean "no weights"
        where = Path(weights_dir or "$EMBEDDER_WEIGHTS_DIR") / spec.name / WEIGHT_FILES[0]
        raise WeightsUnavailableError(
            f"CLIP weights {spec.arch}/{spec.weights} ({spec.download_mb} MB) are not cached and could not be "
            f"downloaded ({one_line(exc, 120)}); connect once to fill the cache, or put them at {where}"
        ) from None
    return model.eval()


class ClipEncoder:
    """Encodes RGB frames and text into one L2-normalised CLIP space."""

    def __init__(self, spec: ModelSpec, device: str = "auto", weights_dir: Path | None = None):
        import open_clip

        self.spec = spec
        self.device = resolve_device(device)
        self.model = load_clip(spec, self.device, weights_dir)
        self.batches = Batches(self.device, f"CLIP {spec.arch}")
        self.tokenizer = open_clip.get_tokenizer(spec.arch)
        cfg = getattr(self.model.visual, "preprocess_cfg", {}) or {}
        self.mean = np.asarray(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN), dtype=np.float32)
        self.std = np.asarray(cfg.get("std", open_clip.OPENAI_DATASET_STD), dtype=np.float32)
        self.image_size = spec.image_size or 224

    def preprocess(self, frames: np.ndarray):
        """uint8 N x H x W x 3 -> normalised N x 3 x S x S tensor on the encoder's device:
        shortest-side resize, centre crop.

        The decoders already resize to the encoder's size, so the resize here is usually a no-op.
        On a GPU the frames cross as uint8 (a quarter of the float bytes) from pinned memory
        without blocking, and the resize and normalisation run there; on the CPU the same steps
        run in the same order.
        """
        import torch
        import torch.nn.functional as F

        x = to_device(torch.from_numpy(np.ascontiguousarray(frames)), self.device).permute(0, 3, 1, 2).float()
        size = self.image_size
        h, w = x.shape[2:]
        if min(h, w) != size:
            scale = size / min(h, w)
            new = (max(size, round(h * scale)), max(size, round(w * scale)))
            x = F.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False).clamp(0, 255)
            h, w = new
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
        x = x[:, :, top : top + size, left : left + size] / 255.0
        mean = torch.from_numpy(self.mean).view(1, 3, 1, 1).to(x.device)
        std = torch.from_numpy(self.std).view(1, 3, 1, 1).to(x.device)
        return (x - mean) / std

    def encode_images(self, frames: np.ndarray, batch_size: int | str = "auto") -> np.ndarray:
        """Embed frames (uint8, N x H x W x 3); returns N x dim unit vectors."""

        def encode(start: int, stop: int) -> np.ndarray:
            pixels = self.preprocess(frames[start:stop])
            with inference_context(self.device):
                return l2_normalise(self.model.encode_image(pixels))

        out = self.batches.run(len(frames), batch_size, encode)
        return np.concatenate(out) if out else np.zeros((0, self.spec.dim), np.float32)

    def encode_frame_sets(self, frame_sets: list[np.ndarray], batch_size: int | str = "auto") -> list[np.ndarray]:
        """Embed the frames of many items in shared batches (sizes may differ between items).

        Short items fill a batch together, so the GPU sees full batches even for many short clips.
        Returns one N_i x dim array per item, in order.
        """
        import torch

        if not frame_sets:
            return []
        pixels = torch.cat([self.preprocess(frames) for frames in frame_sets])

        def encode(start: int, stop: int) -> np.ndarray:
            with inference_context(self.device):
                return l2_normalise(self.model.encode_image(pixels[start:stop]))

        flat = np.concatenate(self.batches.run(len(pixels), batch_size, encode))
        bounds = np.cumsum([len(f) for f in frame_sets])[:-1]
        return np.split(flat, bounds)

    query_model = None  # an int8 copy of the text tower for queries (quantize_queries)

    def quantize_queries(self) -> bool:
        """Encode query texts with an int8 copy of the text tower (CPU only); returns whether it did."""
        import torch

        from embedder.encoders.base import int8_text_tower

        if self.device != "cpu":
            return False

        def cast_fix(light):  # open_clip reads the Linear weight's dtype, which int8 layers hide
            light.transformer.get_cast_dtype = lambda: torch.float32

        self.query_model = int8_text_tower(self.model, "visual", cast_fix)
        return True

    def encode_texts(self, texts: list[str], batch_size: int = 256, model=None) -> np.ndarray:
        """Embed texts (truncated to CLIP's context); returns N x dim unit vectors. ``model``: another
        copy of the text tower to use (the int8 query copy)."""
        model = model if model is not None else self.model
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[start : start + batch_size]).to(self.device)
            with inference_context(self.device):
                out.append(l2_normalise(model.encode_text(tokens)))
        return np.concatenate(out) if out else np.zeros((0, self.spec.dim), np.float32)


class ClipVisual(ModalityEncoder):
    """The ``visual`` block: an item's frames through the image tower, pooled to one vector."""

    modality = "visual"

    def encode_units(self, items, batch_size: int | str = "auto") -> dict[int, np.ndarray]:
        with_frames = [i for i, item in enumerate(items) if item.frames is not None]
        sets = self.model.encode_frame_sets([items[i].frames.frames for i in with_frames], batch_size)
        return dict(zip(with_frames, sets))

    def item_units(self, item) -> int:
        return len(item.frames.item_frames)


class ClipText(ModalityEncoder):
    """The ``text`` block: an item's text (subtitles, sidecar, tags) through the text tower."""

    modality = "text"

    def encode_units(self, items, batch_size: int | str = "auto") -> dict[int, np.ndarray]:
        """The item's text, then each segment's (subtitle lines under it); each distinct text is
        encoded once, since segments of a file without subtitles all carry the item's text."""
        per_item = [[item.text.text] + [s.text for s in item.segments or []] for item in items]
        distinct = list(dict.fromkeys(t for texts in per_item for t in texts))
        vectors = dict(zip(distinct, self.model.encode_texts(distinct)))
        return {i: np.stack([vectors[t] for t in texts]) for i, texts in enumerate(per_item)}

    def encode_items(self, items, batch_size: int | str = "auto") -> dict[int, np.ndarray]:
        return dict(enumerate(self.model.encode_texts([item.text.text for item in items])))


def load_blocks(spec: ModelSpec, device: str, weights_dir: Path | None) -> dict[str, ModalityEncoder]:
    """One CLIP model serving the ``visual`` and ``text`` blocks."""
    model = ClipEncoder(spec, device, weights_dir)
    return {"visual": ClipVisual(model), "text": ClipText(model)}
