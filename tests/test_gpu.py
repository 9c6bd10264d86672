"""CUDA path: runs only where a GPU is present (skipped elsewhere, including CI)."""

import numpy as np
import pytest
import torch

from embedder.encoders.clap import ClapEncoder
from embedder.encoders.clip import ClipEncoder
from embedder.encoders.registry import MODELS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_bf16_autocast_on_gpu_matches_fp32_on_cpu():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(8, 64, 85, 3), dtype=np.uint8)
    windows = [rng.standard_normal(480_000).astype(np.float32) for _ in range(4)]
    texts = ["a red car", "rain on a roof"]
    for cls, spec, call in (
        (ClipEncoder, "tiny-clip", lambda e: e.encode_images(frames)),
        (ClipEncoder, "tiny-clip", lambda e: e.encode_texts(texts)),
        (ClapEncoder, "tiny-clap", lambda e: e.encode_audio(windows)),
    ):
        cpu = call(cls(MODELS[spec], device="cpu"))
        gpu = call(cls(MODELS[spec], device="cuda"))
        cos = (cpu * gpu).sum(axis=1)
        assert gpu.dtype == np.float32 and np.allclose(np.linalg.norm(gpu, axis=1), 1, atol=1e-3)
        assert cos.min() > 0.99, (spec, cos)  # bf16 rounding, not a different model


def test_device_auto_picks_cuda():
    from embedder.encoders.runtime import resolve_device

    assert resolve_device("auto") == "cuda"


def test_full_size_models_in_bf16_on_gpu_match_fp32_on_cpu():
    """The bench preset's architectures (ViT-B-32, the full CLAP): bf16 autocast on CUDA keeps
    the embeddings of fp32 on CPU."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(8, 224, 298, 3), dtype=np.uint8)
    windows = [rng.standard_normal(480_000).astype(np.float32) for _ in range(2)]
    texts = ["a red car", "rain on a roof"]
    for cls, spec, call in (
        (ClipEncoder, "bench-clip", lambda e: e.encode_images(frames)),
        (ClipEncoder, "bench-clip", lambda e: e.encode_texts(texts)),
        (ClapEncoder, "bench-clap", lambda e: e.encode_audio(windows)),
        (ClapEncoder, "bench-clap", lambda e: e.encode_texts(texts)),
    ):
        cpu = call(cls(MODELS[spec], device="cpu"))
        gpu = call(cls(MODELS[spec], device="cuda"))
        cos = (cpu * gpu).sum(axis=1)
        assert cos.min() > 0.98, (spec, cos)


def test_nvdec_decodes_on_the_gpu(media):
    from embedder.media.probe import probe
    from embedder.media.video import SamplingOptions, sample_frames

    path = str(media["h264.mp4"])
    cpu = sample_frames(path, probe(path), SamplingOptions(image_size=40))
    gpu = sample_frames(path, probe(path), SamplingOptions(image_size=40, gpu_decode=True))
    assert gpu.decoder == "torchcodec-cuda", gpu.fallback_reason  # a torchcodec built without CUDA says so here
    assert gpu.frames.shape == cpu.frames.shape
    assert np.abs(gpu.frames.astype(int) - cpu.frames.astype(int)).mean() < 8


def test_frames_cross_as_uint8_and_are_resized_and_normalised_on_the_gpu():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, size=(4, 50, 70, 3), dtype=np.uint8)  # not the encoder's size: resized
    cpu = ClipEncoder(MODELS["tiny-clip"], device="cpu").preprocess(frames)
    gpu = ClipEncoder(MODELS["tiny-clip"], device="cuda").preprocess(frames)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32 and gpu.shape == cpu.shape
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), atol=1e-3)


def test_auto_batches_fill_the_gpu_without_running_out_of_memory():
    """300 frames at the default batch on CUDA: two batches (256 + 44), no halving, the same
    vectors as the CPU's batches of 32."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(300, 224, 224, 3), dtype=np.uint8)
    gpu_encoder = ClipEncoder(MODELS["bench-clip"], device="cuda")
    gpu = gpu_encoder.encode_images(frames)
    assert gpu_encoder.batches.cap is None  # 256 frames of ViT-B-32 fit
    cpu = ClipEncoder(MODELS["bench-clip"], device="cpu").encode_images(frames[:40])
    assert (cpu * gpu[:40]).sum(axis=1).min() > 0.98
