"""Named model specs, presets, and the model families that encode each content block.

Adding a model of a known family means adding a spec here; nothing else changes. A new family
is one module with ``load_blocks`` (see :mod:`embedder.encoders.base`) and one entry in
:data:`FAMILIES`.

This module is pure data (no torch import), so settings, inspect and ``--help`` can use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from embedder.errors import SettingsError

if TYPE_CHECKING:
    from embedder.settings import Settings


@dataclass(frozen=True)
class ModelSpec:
    """What embedder needs to know about a model before loading it.

    Attributes:
        name: registry key, used in settings and stored in every point's provenance.
        family: "open_clip" (image + text), "clap" (audio + text, transformers ``ClapModel``) or
            "whisper" (speech to text, transformers ``WhisperForConditionalGeneration``).
        dim: output embedding size (0 for a speech recogniser: it writes text, not vectors).
        arch: open_clip model name, or the transformers architecture.
        weights: open_clip pretrained tag, a Hugging Face repo id, or "random" for the tiny
            configs built in-process from ``seed``.
        image_size: input side in pixels (open_clip models).
        sample_rate: input sample rate in Hz (CLAP models).
        version: changes whenever the weights change, so stored vectors can be found stale.
        download_mb: approximate size of the weights on first use.
    """

    name: str
    family: str
    dim: int
    arch: str
    weights: str
    image_size: int | None = None
    sample_rate: int | None = None
    version: str = "1"
    download_mb: int = 0
    seed: int = 0
    # Random weights only: "tiny" (a small config) or a released architecture's sizes, for
    # measuring speed without a download: CLAP "full" (HTSAT + RoBERTa, transformers' ClapConfig
    # defaults), Whisper "small" or "large-v3-turbo" (embedder.encoders.whisper.ARCHITECTURES).
    random_config: str = "tiny"

    @property
    def is_random(self) -> bool:
        return self.weights == "random"

    @property
    def model_id(self) -> str:
        """A stable provenance string, e.g. ``open_clip:ViT-B-32/laion2b_s34b_b79k@1``."""
        return f"{self.family}:{self.arch}/{self.weights}@{self.version}"

    def to_dict(self) -> dict:
        return asdict(self)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="clip-vit-b-32",
            family="open_clip",
            dim=512,
            arch="ViT-B-32",
            weights="laion2b_s34b_b79k",
            image_size=224,
            download_mb=605,
        ),
        ModelSpec(
            name="clap-htsat-unfused",
            family="clap",
            dim=512,
            arch="ClapModel",
            weights="laion/clap-htsat-unfused",
            sample_rate=48_000,
            download_mb=615,
        ),
        # Small random-weight configs built locally: no downloads, seeded, deterministic.
        # They carry no meaning, but every line of the real loading and encoding code runs.
        ModelSpec(
            name="tiny-clip", family="open_clip", dim=64, arch="embedder-tiny-clip", weights="random", image_size=64
        ),
        ModelSpec(name="tiny-clap", family="clap", dim=64, arch="ClapModel", weights="random", sample_rate=48_000),
        # The same configs with another seed: "a new model" for exercising re-embedding offline.
        ModelSpec(
            name="tiny-clip-b",
            family="open_clip",
            dim=64,
            arch="embedder-tiny-clip",
            weights="random",
            image_size=64,
            seed=1,
            version="1b",
        ),
        ModelSpec(
            name="tiny-clap-b",
            family="clap",
            dim=64,
            arch="ClapModel",
            weights="random",
            sample_rate=48_000,
            seed=1,
            version="1b",
        ),
        # The default architectures with seeded random weights, built locally: for measuring speed
        # only (benchmarks, GPU checks). Their vectors carry no meaning.
        ModelSpec(
            name="bench-clip",
            family="open_clip",
            dim=512,
            arch="ViT-B-32",
            weights="random",
            image_size=224,
            version="bench",
        ),
        ModelSpec(
            name="bench-clap",
            family="clap",
            dim=512,
            arch="ClapModel",
            weights="random",
            sample_rate=48_000,
            random_config="full",
            version="bench",
        ),
        # Speech recognisers (speech_model). The released checkpoints, where weights can be had:
        # large-v3-turbo is the quality default on a GPU, small the one for CPUs.
        ModelSpec(
            name="whisper-large-v3-turbo",
            family="whisper",
            dim=0,
            arch="WhisperForConditionalGeneration",
            weights="openai/whisper-large-v3-turbo",
            sample_rate=16_000,
            download_mb=1620,
        ),
        ModelSpec(
            name="whisper-small",
            family="whisper",
            dim=0,
            arch="WhisperForConditionalGeneration",
            weights="openai/whisper-small",
            sample_rate=16_000,
            download_mb=970,
        ),
        # Random weights: the test suite's plumbing (tiny), and the two architectures for speed.
        ModelSpec(
            name="tiny-whisper",
            family="whisper",
            dim=0,
            arch="WhisperForConditionalGeneration",
            weights="random",
            sample_rate=16_000,
        ),
        ModelSpec(
            name="bench-whisper",
            family="whisper",
            dim=0,
            arch="WhisperForConditionalGeneration",
            weights="random",
            sample_rate=16_000,
            random_config="large-v3-turbo",
            version="bench",
        ),
        ModelSpec(
            name="bench-whisper-small",
            family="whisper",
            dim=0,
            arch="WhisperForConditionalGeneration",
            weights="random",
            sample_rate=16_000,
            random_config="small",
            version="bench",
        ),
    )
}


@dataclass(frozen=True)
class Family:
    """A kind of model: the content blocks it can encode and the module that loads it."""

    modalities: tuple[str, ...]
    module: str  # has load_blocks(spec, device, weights_dir) -> {modality: ModalityEncoder}


FAMILIES: dict[str, Family] = {
    "open_clip": Family(("visual", "text"), "embedder.encoders.clip"),
    "clap": Family(("audio",), "embedder.encoders.clap"),
    # Not a content block: a speech recogniser, run by the decoders (embedder.media.speech).
    "whisper": Family(("speech",), "embedder.encoders.whisper"),
}


def speech_models() -> tuple[str, ...]:
    """The names ``speech_model`` takes: ``pocketsphinx`` (offline, in its wheel), every
    registered Whisper model, and ``none``."""
    return ("pocketsphinx", *(n for n, s in MODELS.items() if s.family == "whisper"), "none")


def check_speech_model(name: str) -> str:
    """``name`` when ``speech_model`` may take it.

    Raises:
        SettingsError: an unknown name, listing the known ones.
    """
    if name not in speech_models():
        raise SettingsError(
            f"invalid setting 'speech_model' (EMBEDDER_SPEECH_MODEL): unknown model '{name}'; "
            f"choose one of {', '.join(speech_models())}"
        )
    return name


PRESETS: dict[str, tuple[str, str]] = {
    "default": ("clip-vit-b-32", "clap-htsat-unfused"),
    "tiny": ("tiny-clip", "tiny-clap"),
    "bench": ("bench-clip", "bench-clap"),  # for measuring speed only: default sizes, random weights
}


def get_spec(name: str) -> ModelSpec:
    """Look a model up by name.

    Raises:
        SettingsError: for an unknown name, listing the known ones.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise SettingsError(f"unknown model '{name}'; known models: {', '.join(sorted(MODELS))}") from None


def resolve_models(settings: Settings) -> tuple[ModelSpec, ModelSpec]:
    """The (CLIP, CLAP) specs chosen by ``settings.models`` and the per-model overrides."""
    if settings.models not in PRESETS:
        raise SettingsError(
            f"invalid setting 'models' (EMBEDDER_MODELS): unknown preset '{settings.models}'; "
            f"choose one of {', '.join(PRESETS)}"
        )
    clip_name, clap_name = PRESETS[settings.models]
    clip = get_spec(settings.clip_model or clip_name)
    clap = get_spec(settings.clap_model or clap_name)
    for setting, spec, needs in (("clip_model", clip, ("visual", "text")), ("clap_model", clap, ("audio",))):
        serves = FAMILIES[spec.family].modalities
        if not set(needs) <= set(serves):
            raise SettingsError(
                f"invalid setting '{setting}': {spec.name} ({spec.family}) encodes "
                f"{', '.join(serves)}, not {', '.join(needs)}"
            )
    return clip, clap


def modality_specs(settings: Settings) -> dict[str, ModelSpec]:
    """The model behind each content block: frames and item text by the image-text model
    (``clip_model``), audio by the audio-text model (``clap_model``), unless ``visual_model``,
    ``audio_model`` or ``text_model`` names another for that block.

    Raises:
        SettingsError: an unknown model, or one whose family cannot encode the block.
    """
    clip, clap = resolve_models(settings)
    specs = {"visual": clip, "audio": clap, "text": clip}
    for modality in specs:
        name = getattr(settings, f"{modality}_model", None)
        if name:
            spec = get_spec(name)
            if modality not in FAMILIES[spec.family].modalities:
                raise SettingsError(
                    f"invalid setting '{modality}_model': {spec.name} ({spec.family}) encodes "
                    f"{', '.join(FAMILIES[spec.family].modalities)}, not {modality}"
                )
            specs[modality] = spec
    return specs
