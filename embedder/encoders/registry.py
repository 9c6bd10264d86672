"""Named model specs and presets. Adding a model means adding a spec here; nothing else changes.

This module is pure data (no torch import), so settings, inspect and ``--help`` can use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from embedder.errors import SettingsError


@dataclass(frozen=True)
class ModelSpec:
    """What embedder needs to know about a model before loading it.

    Attributes:
        name: registry key, used in settings and stored in every point's provenance.
        family: "open_clip" (image + text) or "clap" (audio + text, transformers ``ClapModel``).
        dim: output embedding size.
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
        ModelSpec(name="tiny-clip", family="open_clip", dim=64, arch="embedder-tiny-clip", weights="random", image_size=64),
        ModelSpec(name="tiny-clap", family="clap", dim=64, arch="ClapModel", weights="random", sample_rate=48_000),
        # The same configs with another seed: "a new model" for exercising re-embedding offline.
        ModelSpec(name="tiny-clip-b", family="open_clip", dim=64, arch="embedder-tiny-clip", weights="random",
                  image_size=64, seed=1, version="1b"),
        ModelSpec(name="tiny-clap-b", family="clap", dim=64, arch="ClapModel", weights="random", sample_rate=48_000,
                  seed=1, version="1b"),
    )
}

PRESETS: dict[str, tuple[str, str]] = {
    "default": ("clip-vit-b-32", "clap-htsat-unfused"),
    "tiny": ("tiny-clip", "tiny-clap"),
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


def resolve_models(settings) -> tuple[ModelSpec, ModelSpec]:
    """The (CLIP, CLAP) specs chosen by ``settings.models`` and the per-model overrides."""
    if settings.models not in PRESETS:
        raise SettingsError(
            f"invalid setting 'models' (EMBEDDER_MODELS): unknown preset '{settings.models}'; "
            f"choose one of {', '.join(PRESETS)}"
        )
    clip_name, clap_name = PRESETS[settings.models]
    clip = get_spec(settings.clip_model or clip_name)
    clap = get_spec(settings.clap_model or clap_name)
    if clip.family != "open_clip":
        raise SettingsError(f"invalid setting 'clip_model': {clip.name} is not an open_clip model")
    if clap.family != "clap":
        raise SettingsError(f"invalid setting 'clap_model': {clap.name} is not a CLAP model")
    return clip, clap
