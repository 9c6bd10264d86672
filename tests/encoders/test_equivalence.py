"""Our wrappers add no error: same output as open_clip's and transformers' own code paths."""

import numpy as np
import pytest
import torch

from embedder.encoders.clap import ClapEncoder
from embedder.encoders.clip import ClipEncoder
from embedder.encoders.registry import MODELS


@pytest.fixture(scope="module")
def clip():
    return ClipEncoder(MODELS["tiny-clip"], device="cpu")


@pytest.fixture(scope="module")
def clap():
    return ClapEncoder(MODELS["tiny-clap"], device="cpu")


def test_clip_image_matches_open_clip_preprocess_and_encode(clip):
    import open_clip
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 64, 64, 3), dtype=np.uint8)
    ours = clip.encode_images(frames)
    _, _, preprocess = open_clip.create_model_and_transforms("embedder-tiny-clip", pretrained=None)
    pixels = torch.stack([preprocess(Image.fromarray(f)) for f in frames])
    with torch.no_grad():
        ref = clip.model.encode_image(pixels)
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_clip_centre_crop_matches_torchvision_for_wide_frames(clip):
    import torchvision.transforms.functional as TF

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(2, 64, 85, 3), dtype=np.uint8)  # what the decoder hands over
    ours = clip.preprocess(frames)
    ref = TF.center_crop(torch.from_numpy(frames).permute(0, 3, 1, 2), [64, 64]).float() / 255.0
    ref = TF.normalize(ref, list(clip.mean), list(clip.std))
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-6)


def test_clip_text_matches_open_clip(clip):
    import open_clip

    texts = ["a red sunset", "a dog barking in the park"]
    tokens = open_clip.get_tokenizer("embedder-tiny-clip")(texts)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(clip.model.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(clip.encode_texts(texts), ref, atol=1e-6)


def test_frame_sets_of_different_sizes_batch_like_single_calls(clip):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, size=(3, 64, 85, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(2, 85, 64, 3), dtype=np.uint8)
    va, vb = clip.encode_frame_sets([a, b], batch_size=4)  # the batch boundary cuts across items
    np.testing.assert_allclose(va, clip.encode_images(a), atol=1e-5)
    np.testing.assert_allclose(vb, clip.encode_images(b), atol=1e-5)


def test_clap_audio_and_text_match_transformers(clap):
    from transformers import ClapFeatureExtractor

    rng = np.random.default_rng(3)
    windows = [rng.standard_normal(480_000).astype(np.float32), rng.standard_normal(120_000).astype(np.float32)]
    ours = clap.encode_audio(windows)
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48_000, truncation="rand_trunc")
    feats = extractor(windows, sampling_rate=48_000, return_tensors="pt")
    with torch.no_grad():
        ref = clap.model.get_audio_features(**feats).pooler_output
    np.testing.assert_allclose(ours, torch.nn.functional.normalize(ref, dim=-1).numpy(), atol=1e-5)

    texts = ["rain on a tin roof", "a violin"]
    tokens = clap.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = clap.model.get_text_features(**tokens).pooler_output
    np.testing.assert_allclose(clap.encode_texts(texts), torch.nn.functional.normalize(ref, dim=-1).numpy(), atol=1e-5)


def test_clap_log_mel_in_torch_matches_the_feature_extractor(clap, monkeypatch):
    from transformers import ClapFeatureExtractor

    rng = np.random.default_rng(4)
    # Full, short (repeated then zero-padded), one sample short, very short, and silence (the floor).
    lengths = [480_000, 120_000, 479_999, 4_800, 250_000]
    windows = [0.1 * rng.standard_normal(n).astype(np.float32) for n in lengths] + [np.zeros(96_000, np.float32)]
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48_000, truncation="rand_trunc")
    ref = extractor(windows, sampling_rate=48_000, return_tensors="pt")
    ours = clap.features(windows)
    assert ours["input_features"].shape == ref["input_features"].shape == (6, 1, 1001, 64)
    np.testing.assert_allclose(ours["input_features"].numpy(), ref["input_features"].numpy(), atol=1e-3)  # dB
    assert ref["input_features"].min() == -100.0 and not ours["is_longer"].any()

    # A mode the torch path does not cover goes through the extractor itself.
    monkeypatch.setattr(clap.extractor, "truncation", "fusion")
    assert clap.features(windows[:2])["input_features"].shape == (2, 4, 1001, 64)


def test_tiny_models_are_deterministic_and_do_not_touch_global_rng(clip):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    again = ClipEncoder(MODELS["tiny-clip"], device="cpu")
    assert torch.equal(torch.rand(1), before)  # building the model left the caller's RNG alone
    texts = ["same seed, same weights"]
    np.testing.assert_array_equal(again.encode_texts(texts), clip.encode_texts(texts))


def test_missing_weights_offline_is_one_clear_error(monkeypatch, tmp_path):
    from embedder.errors import WeightsUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(
        WeightsUnavailableError, match=r"CLIP weights ViT-B-32/laion2b_s34b_b79k \(605 MB\) are not cached"
    ):
        ClipEncoder(MODELS["clip-vit-b-32"], device="cpu", weights_dir=tmp_path)
    with pytest.raises(WeightsUnavailableError, match=r"CLAP weights laion/clap-htsat-unfused \(615 MB\)"):
        ClapEncoder(MODELS["clap-htsat-unfused"], device="cpu", weights_dir=tmp_path)


def test_local_weights_dir_is_loaded_with_safetensors(tmp_path, clip):
    """A checkpoint saved as safetensors under EMBEDDER_WEIGHTS_DIR/<name>/ is what gets loaded."""
    from dataclasses import replace

    from safetensors.torch import save_file

    from embedder.encoders import registry

    spec = replace(MODELS["tiny-clip"], name="tiny-clip-local", weights="local-test")
    folder = tmp_path / spec.name
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in clip.model.state_dict().items()}, folder / "open_clip_model.safetensors")
    loaded = ClipEncoder(spec, device="cpu", weights_dir=tmp_path)
    texts = ["weights from a local folder"]
    np.testing.assert_allclose(loaded.encode_texts(texts), clip.encode_texts(texts), atol=1e-6)
    assert registry.get_spec("tiny-clip").weights == "random"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_asking_for_cuda_without_a_gpu_is_one_clear_error():
    from embedder.errors import EmbedderError

    with pytest.raises(EmbedderError, match="device 'cuda' was requested but CUDA is not available; use --device cpu"):
        ClipEncoder(MODELS["tiny-clip"], device="cuda")
