"""CLAP (transformers ``ClapModel``) for audio windows and text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedder.encoders.base import ModalityEncoder
from embedder.encoders.registry import ModelSpec
from embedder.encoders.runtime import (
    Batches,
    batch_size_for,
    hub_online,
    inference_context,
    l2_normalise,
    resolve_device,
    seeded,
    to_device,
)
from embedder.errors import WeightsUnavailableError, one_line

TEXT_MAX_TOKENS = 77


def _tiny_config():
    from transformers import ClapAudioConfig, ClapConfig, ClapTextConfig

    # spec_size 256 with 64 mel bins is what HTSAT needs for 10 s inputs; everything else is small.
    audio = ClapAudioConfig(
        depths=[1, 1],
        num_attention_heads=[2, 4],
        hidden_size=64,
        patch_embeds_hidden_size=32,
        window_size=4,
        spec_size=256,
        num_mel_bins=64,
        patch_size=16,
        patch_stride=(16, 16),
        projection_dim=64,
    )
    text = ClapTextConfig(
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=130,
        projection_dim=64,
    )
    return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=64)


def byte_tokenizer():
    """A byte-level tokenizer built locally (no vocabulary download), for the tiny preset.

    It is a real ``PreTrainedTokenizerFast`` with RoBERTa's special tokens and post-processing,
    so the text path runs exactly as with the checkpoint's own tokenizer.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def load_clap(spec: ModelSpec, device: str = "cpu", weights_dir: Path | None = None):
    """Return ``(model, feature_extractor, tokenizer)`` for ``spec``.

    Real weights load from ``weights_dir/<spec.name>/`` (a saved checkpoint folder) or from the
    Hugging Face cache/hub, preferring safetensors.

    Raises:
        WeightsUnavailableError: the weights are neither local nor downloadable.
    """
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    if spec.is_random:
        from transformers import ClapConfig

        config = _tiny_config() if spec.random_config == "tiny" else ClapConfig(projection_dim=spec.dim)
        with seeded(spec.seed):
            model = ClapModel(config)
        extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=spec.sample_rate, truncation="rand_trunc")
        return model.to(device).eval(), extractor, byte_tokenizer()
    local = Path(weights_dir) / spec.name if weights_dir else None
    source = str(local) if local is not None and (local / "config.json").is_file() else spec.weights
    offline = source == spec.weights and not hub_online()
    try:
        model = ClapModel.from_pretrained(source, local_files_only=offline)
        # Unfused checkpoints take one mel channel; the extractor's default "fusion" makes four.
        truncation = "fusion" if model.config.audio_config.enable_fusion else "rand_trunc"
        extractor = ClapFeatureExtractor.from_pretrained(source, truncation=truncation, local_files_only=offline)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
    except Exception as exc:
        where = Path(weights_dir or "$EMBEDDER_WEIGHTS_DIR") / spec.name
        raise WeightsUnavailableError(
            f"CLAP weights {spec.weights} ({spec.download_mb} MB) are not cached and could not be downloaded "
            f"({one_line(exc, 120)}); connect once to fill the cache, or save the checkpoint to {where}"
        ) from None
    return model.to(device).eval(), extractor, tokenizer


class ClapEncoder:
    """Encodes 48 kHz mono audio windows and text into one L2-normalised CLAP space."""

    def __init__(self, spec: ModelSpec, device: str = "auto", weights_dir: Path | None = None):
        self.spec = spec
        self.device = resolve_device(device)
        self.model, self.extractor, self.tokenizer = load_clap(spec, self.device, weights_dir)
        self.batches = Batches(self.device, f"CLAP {spec.model_id}")
        self.sample_rate = spec.sample_rate or 48_000

    def encode_audio(self, windows: list[np.ndarray], batch_size: int | str = "auto") -> np.ndarray:
        """Embed audio windows (float32 mono at 48 kHz, up to 10 s each); N x dim unit vectors.

        Windows shorter than 10 s are padded as the feature extractor pads them ("repeatpad"),
        exactly as CLAP was trained; windows are never longer, so no random crop happens.
        """

        def encode(start: int, stop: int) -> np.ndarray:
            feats = self.features(windows[start:stop])
            with inference_context(self.device):
                return l2_normalise(self.model.get_audio_features(**feats).pooler_output)

        out = self.batches.run(len(windows), batch_size, encode)
        return np.concatenate(out) if out else np.zeros((0, self.spec.dim), np.float32)

    def features(self, windows: list[np.ndarray]) -> dict:
        """The model's input for ``windows``, on the encoder's device: what transformers'
        ``ClapFeatureExtractor`` computes, with the STFT and the mel filters run by torch.

        The extractor runs a float64 numpy STFT on one CPU thread: about 23 ms per 10 s window,
        ten times what the audio tower needs per window on a GPU, so it would bound a GPU ingest
        of audio. Here only the padding happens on the CPU; the log-mel spectrogram is computed
        where the model runs, with the extractor's own filter bank (``mel_filters_slaney``, the
        one its "rand_trunc" mode uses). Another mode (a "fusion" checkpoint), or a window over
        10 s, goes through the extractor itself.
        """
        import torch

        ex = self.extractor
        samples = ex.nb_max_samples
        if ex.truncation != "rand_trunc" or ex.padding != "repeatpad" or any(len(w) > samples for w in windows):
            feats = ex(
                [np.asarray(w, dtype=np.float32) for w in windows], sampling_rate=self.sample_rate, return_tensors="pt"
            )
            return {k: to_device(v, self.device) for k, v in feats.items()}
        padded = np.zeros((len(windows), samples), np.float32)
        for row, window in zip(padded, windows):
            tiled = np.tile(np.asarray(window, dtype=np.float32), samples // max(1, len(window)))  # repeat, then zeros
            row[: len(tiled)] = tiled
        with torch.inference_mode():
            audio = to_device(torch.from_numpy(padded), self.device)
            if self._mel_filters is None:
                self._mel_filters = torch.from_numpy(np.asarray(ex.mel_filters_slaney, np.float32).T).to(audio.device)
            window = torch.hann_window(ex.fft_window_size, periodic=True, device=audio.device)
            power = (
                torch.stft(
                    audio,
                    ex.fft_window_size,
                    ex.hop_length,
                    window=window,
                    center=True,
                    pad_mode="reflect",
                    return_complex=True,
                )
                .abs()
                .pow(2)
            )
            log_mel = 10.0 * torch.log10(torch.matmul(self._mel_filters, power).clamp(min=1e-10))
            return {
                "input_features": log_mel.transpose(1, 2).unsqueeze(1),
                "is_longer": torch.zeros((len(windows), 1), dtype=torch.bool, device=audio.device),
            }

    _mel_filters = None  # the extractor's filter bank, mel x frequency, on the device (made once)

    query_model = None  # an int8 copy of the text tower for queries (quantize_queries)

    def quantize_queries(self) -> bool:
        """Encode query texts with an int8 copy of the text tower (CPU only); returns whether it did."""
        from embedder.encoders.base import int8_text_tower

        if self.device != "cpu":
            return False
        self.query_model = int8_text_tower(self.model, "audio_model")
        return True

    def encode_texts(self, texts: list[str], batch_size: int = 256, model=None) -> np.ndarray:
        """Embed texts with CLAP's text tower; N x dim unit vectors. ``model``: another copy of the
        text tower to use (the int8 query copy)."""
        model = model if model is not None else self.model
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                return_tensors="pt",
            )
            tokens = {k: v.to(self.device) for k, v in tokens.items()}
            with inference_context(self.device):
                out.append(l2_normalise(model.get_text_features(**tokens).pooler_output))
        return np.concatenate(out) if out else np.zeros((0, self.spec.dim), np.float32)


class ClapAudio(ModalityEncoder):
    """The ``audio`` block: an item's 10 s windows through CLAP's audio tower, pooled."""

    modality = "audio"

    def encode_units(self, items, batch_size: int | str = "auto") -> dict[int, np.ndarray]:
        with_audio = [i for i, item in enumerate(items) if item.audio is not None]
        windows = [w for i in with_audio for w in items[i].audio.windows]
        if not windows:
            return {}
        # Audio windows are ten seconds of 48 kHz samples: half the frame batch keeps memory level.
        flat = self.model.encode_audio(windows, batch_size=max(1, batch_size_for(batch_size, self.model.device) // 2))
        out, start = {}, 0
        for i in with_audio:
            n = len(items[i].audio.windows)
            out[i] = flat[start : start + n]
            start += n
        return out

    def item_units(self, item) -> int:
        return len(item.audio.item_windows)


def load_blocks(spec: ModelSpec, device: str, weights_dir: Path | None) -> dict[str, ModalityEncoder]:
    """One CLAP model serving the ``audio`` block."""
    return {"audio": ClapAudio(ClapEncoder(spec, device, weights_dir))}
