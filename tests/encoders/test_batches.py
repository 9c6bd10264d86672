"""Batch sizes: ``auto`` per device, and a GPU that runs out of memory halves the batch instead
of failing the run. A real CUDA out-of-memory cannot happen on this CPU machine, so the model's
forward raises torch's own ``OutOfMemoryError`` above a size, as a small GPU would."""

import logging

import numpy as np
import pytest
import torch

from embedder.encoders.clap import ClapEncoder
from embedder.encoders.clip import ClipEncoder
from embedder.encoders.registry import MODELS
from embedder.encoders.runtime import CPU_BATCH, CUDA_BATCH, batch_size_for
from embedder.errors import EmbedderError
from embedder.settings import load_settings


def test_auto_batch_size_follows_the_device_and_a_number_wins():
    assert batch_size_for("auto", "cpu") == CPU_BATCH == 32
    assert batch_size_for("auto", "cuda:1") == CUDA_BATCH == 256
    assert batch_size_for(64, "cuda") == 64
    assert load_settings().batch_size == "auto"
    assert load_settings(batch_size="48").batch_size == 48
    with pytest.raises(EmbedderError, match="batch_size"):
        load_settings(batch_size=0)


def fits_at_most(model, limit: int, sizes: list[int], attr: str):
    """Make ``model.attr`` raise CUDA's out-of-memory error for batches over ``limit``."""
    forward = getattr(model, attr)

    def limited(x=None, **kwargs):
        size = len(x) if x is not None else len(next(iter(kwargs.values())))
        sizes.append(size)
        if size > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(x, **kwargs) if x is not None else forward(**kwargs)

    return limited


def test_clip_halves_the_batch_on_out_of_memory_and_keeps_the_smaller_size(caplog, monkeypatch):
    clip = ClipEncoder(MODELS["tiny-clip"], device="cpu")
    frames = np.random.default_rng(0).integers(0, 256, size=(11, 64, 64, 3), dtype=np.uint8)
    expected = clip.encode_images(frames, batch_size=16)
    sizes: list[int] = []
    monkeypatch.setattr(clip.model, "encode_image", fits_at_most(clip.model, 3, sizes, "encode_image"))
    with caplog.at_level(logging.WARNING, logger="embedder"):
        got = clip.encode_images(frames, batch_size=16)
    np.testing.assert_allclose(got, expected, atol=1e-5)  # every frame, in order, once
    assert sizes == [11, 5, 2, 2, 2, 2, 2, 1]  # 11 and 5 did not fit; 2 does, then the rest
    assert clip.batches.cap == 2
    assert [r.getMessage() for r in caplog.records] == [
        "CLIP embedder-tiny-clip ran out of GPU memory; going on with batches of 5 (set batch_size to choose)",
        "CLIP embedder-tiny-clip ran out of GPU memory; going on with batches of 2 (set batch_size to choose)",
    ]
    sizes.clear()
    again = clip.encode_frame_sets([frames[:5], frames[5:]], batch_size=16)  # the next group starts at 2
    assert sizes == [2, 2, 2, 2, 2, 1]
    np.testing.assert_allclose(np.concatenate(again), expected, atol=1e-5)

    monkeypatch.setattr(clip.model, "encode_image", fits_at_most(clip.model, 0, [], "encode_image"))
    with pytest.raises(torch.cuda.OutOfMemoryError):  # not even one frame fits: the error stands
        clip.encode_images(frames[:3], batch_size=16)


def test_clap_halves_its_audio_batch_on_out_of_memory(monkeypatch):
    clap = ClapEncoder(MODELS["tiny-clap"], device="cpu")
    rng = np.random.default_rng(1)
    windows = [rng.standard_normal(48_000).astype(np.float32) for _ in range(5)]
    expected = clap.encode_audio(windows, batch_size=8)
    sizes: list[int] = []
    forward = clap.model.get_audio_features

    def limited(**feats):
        sizes.append(len(feats["input_features"]))
        if sizes[-1] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return forward(**feats)

    monkeypatch.setattr(clap.model, "get_audio_features", limited)
    np.testing.assert_allclose(clap.encode_audio(windows, batch_size=8), expected, atol=1e-5)
    assert sizes == [5, 2, 2, 1] and clap.batches.cap == 2
