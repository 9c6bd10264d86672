"""Whisper (transformers ``WhisperForConditionalGeneration``): speech to timestamped text.

It runs where PocketSphinx runs, in the decode workers (:func:`embedder.media.speech.transcribe`
picks it by ``speech_model``): the voice detector's spans are packed into chunks of at most
30 s (Whisper's window), the chunks of a file go through the model in batches, and each chunk's
timestamp tokens give the times of its segments. On CUDA the model runs in bf16.

Each worker process loads the model once and keeps it for the files it decodes (a worker is
retired after a hundred files; :mod:`embedder.media.isolation`).

Real weights load from ``weights_dir/<spec.name>/`` (a saved checkpoint folder with the model,
processor and generation config) or the Hugging Face cache. The random-weight configs are built
locally: ``tiny`` (with a byte-level tokenizer) for the test suite's plumbing, and the released
architectures' sizes for measuring speed. Their words mean nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedder.encoders.registry import ModelSpec
from embedder.encoders.runtime import hub_online, resolve_device, seeded
from embedder.errors import WeightsUnavailableError, one_line

SAMPLE_RATE = 16_000
CHUNK_S = 30.0  # Whisper's input window
TIME_STEP_S = 0.02  # one timestamp token

# The released architectures, for the random-weight speed configs (transformers WhisperConfig fields).
ARCHITECTURES = {
    "tiny": {
        "d_model": 64,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 128,
        "decoder_ffn_dim": 128,
        "num_mel_bins": 80,
    },
    "small": {
        "d_model": 768,
        "encoder_layers": 12,
        "decoder_layers": 12,
        "encoder_attention_heads": 12,
        "decoder_attention_heads": 12,
        "encoder_ffn_dim": 3072,
        "decoder_ffn_dim": 3072,
        "num_mel_bins": 80,
    },
    "large-v3-turbo": {
        "d_model": 1280,
        "encoder_layers": 32,
        "decoder_layers": 4,
        "encoder_attention_heads": 20,
        "decoder_attention_heads": 20,
        "encoder_ffn_dim": 5120,
        "decoder_ffn_dim": 5120,
        "num_mel_bins": 128,
    },
}
# The special tokens of a random-weight model, after its 256 byte tokens (Whisper's order).
_SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>")
_TIMESTAMPS = int(CHUNK_S / TIME_STEP_S) + 1  # <|0.00|> ... <|30.00|>


@dataclass
class LoadedWhisper:
    """A Whisper model ready to transcribe: where it runs, its input features and its tokens."""

    model: object
    features: object  # WhisperFeatureExtractor
    tokenizer: object
    device: str
    eot: int  # text tokens are below this id; specials and timestamps above
    timestamp_begin: int  # <|0.00|>

    @property
    def languages(self) -> set[str]:
        """The language codes the model knows (``en``, ``de``, ...)."""
        return {token.strip("<|>") for token in (self.model.generation_config.lang_to_id or {})}


def _byte_tokenizer():
    """A byte-level tokenizer with Whisper's special and timestamp tokens (no vocabulary download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tokens = list(_SPECIALS) + [f"<|{i * TIME_STEP_S:.2f}|>" for i in range(_TIMESTAMPS)]
    tok.add_special_tokens(tokens)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def _random_model(spec: ModelSpec):
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    eot = 256
    ids = {token: eot + i for i, token in enumerate(_SPECIALS)}
    arch = ARCHITECTURES[spec.random_config]
    config = WhisperConfig(
        vocab_size=eot + len(_SPECIALS) + _TIMESTAMPS,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        **arch,
    )
    with seeded(spec.seed):
        model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=eot,
        pad_token_id=eot,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        lang_to_id={"<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        is_multilingual=True,
        max_initial_timestamp_index=50,
    )
    return model, arch["num_mel_bins"]


def _missing_weights(spec: ModelSpec, weights_dir: Path | str | None, reason: str) -> WeightsUnavailableError:
    where = Path(weights_dir or "$EMBEDDER_WEIGHTS_DIR") / spec.name
    return WeightsUnavailableError(
        f"Whisper weights {spec.weights} ({spec.download_mb} MB) are not cached and could not be "
        f"downloaded ({reason}); connect once to fill the cache, or save the checkpoint to {where}"
    )


def check_weights(spec: ModelSpec, weights_dir: Path | str | None = None) -> None:
    """Fail at once, before any file is decoded, when ``spec``'s weights are neither saved under
    ``weights_dir``, nor in the Hugging Face cache, nor downloadable (otherwise every file of an
    ingest would say so in its own warning).

    Raises:
        WeightsUnavailableError: naming where to put them.
    """
    if spec.is_random:
        return
    if weights_dir and (Path(weights_dir) / spec.name / "config.json").is_file():
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(spec.weights, "config.json"), str) or hub_online():
        return
    raise _missing_weights(spec, weights_dir, "no network")


def load_whisper(spec: ModelSpec, device: str = "auto", weights_dir: Path | None = None) -> LoadedWhisper:
    """The model, feature extractor and tokenizer of ``spec``, on ``device`` (bf16 on CUDA).

    Raises:
        WeightsUnavailableError: real weights that are neither local nor downloadable.
    """
    import torch
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    device = resolve_device(device)
    if spec.is_random:
        model, mels = _random_model(spec)
        features = WhisperFeatureExtractor(feature_size=mels)
        tokenizer = _byte_tokenizer()
    else:
        local = Path(weights_dir) / spec.name if weights_dir else None
        source = str(local) if local is not None and (local / "config.json").is_file() else spec.weights
        offline = source == spec.weights and not hub_online()
        try:
            model = WhisperForConditionalGeneration.from_pretrained(source, local_files_only=offline)
            features = WhisperFeatureExtractor.from_pretrained(source, local_files_only=offline)
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        except Exception as exc:
            raise _missing_weights(spec, weights_dir, one_line(exc, 120)) from None
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = model.to(device=device, dtype=dtype).eval()
    generation = model.generation_config
    return LoadedWhisper(
        model=model,
        features=features,
        tokenizer=tokenizer,
        device=device,
        eot=generation.eos_token_id if isinstance(generation.eos_token_id, int) else generation.eos_token_id[0],
        timestamp_begin=generation.no_timestamps_token_id + 1,
    )


def segments_of(tokens: list[int], loaded: LoadedWhisper, chunk_s: float) -> list[tuple[float, float, str]]:
    """``(start, end, text)`` per segment of one chunk's generated tokens, times from the chunk's start.

    Whisper writes ``<|t0|> text <|t1|>`` for each segment (two timestamps in a row where one
    ends and the next begins). A segment left open at the end of the tokens ends at the chunk's
    end; tokens other than text and timestamps (the prompt, end of text) are skipped. Segments
    come out in time order, none before the one it follows.
    """
    out: list[tuple[float, float, str]] = []
    start: float | None = None
    text: list[int] = []

    def close(end: float) -> None:
        said = loaded.tokenizer.decode(text, skip_special_tokens=True).strip()
        if said and start is not None:
            # Times in order and inside the chunk, even where a model writes them otherwise
            # (random weights do; padding can carry a segment past the audio).
            begin = min(max(start, out[-1][1] if out else 0.0), chunk_s)
            out.append((begin, min(max(end, begin), chunk_s), said))

    for token in tokens:
        if token >= loaded.timestamp_begin:
            time = (token - loaded.timestamp_begin) * TIME_STEP_S
            if start is not None and text:
                close(time)
                start, text = None, []
            else:
                start = time
        elif token < loaded.eot:
            if start is None:
                start = 0.0  # text before any timestamp: the model skipped the opening one
            text.append(token)
    if text:
        close(chunk_s)
    return out


@contextlib.contextmanager
def _quiet_transformers():
    """Whisper's generate warns about arguments it passes itself (max_length beside
    max_new_tokens, suppress tokens beside the generation config) on every call: noise in a
    worker's log, so only errors pass while it runs."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def transcribe_chunks(
    loaded: LoadedWhisper, chunks: list[np.ndarray], language: str, max_new_tokens: int = 220
) -> list[list[tuple[float, float, str]]]:
    """Each 16 kHz mono chunk (at most 30 s) as ``(start, end, text)`` segments, in one batch.

    Raises:
        ValueError: a language the model does not know.
    """
    import torch

    if language not in loaded.languages:
        raise ValueError(f"the model knows no language '{language}' (it knows {', '.join(sorted(loaded.languages))})")
    inputs = loaded.features(chunks, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True)
    features = inputs.input_features.to(loaded.device, dtype=next(loaded.model.parameters()).dtype)
    with torch.inference_mode(), _quiet_transformers():
        generated = loaded.model.generate(
            features,
            attention_mask=inputs.attention_mask.to(loaded.device),
            return_timestamps=True,
            language=language,
            task="transcribe",
            max_new_tokens=max_new_tokens,
        )
    sequences = generated if isinstance(generated, torch.Tensor) else generated["sequences"]
    return [segments_of(row.tolist(), loaded, len(chunk) / SAMPLE_RATE) for row, chunk in zip(sequences.cpu(), chunks)]


__all__ = ["ARCHITECTURES", "CHUNK_S", "LoadedWhisper", "load_whisper", "segments_of", "transcribe_chunks"]
