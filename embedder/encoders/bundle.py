"""The pair of encoders a run uses, chosen from settings."""

from __future__ import annotations

from dataclasses import dataclass

from embedder.encoders.registry import ModelSpec, resolve_models


@dataclass
class Encoders:
    """CLIP for frames and text, CLAP for audio and text."""

    clip: "object"
    clap: "object"

    @property
    def dims(self) -> dict[str, int]:
        """Sizes of the content-side named vectors (``cf`` is added by the collection schema)."""
        return modality_dims(self.clip.spec, self.clap.spec)

    @property
    def model_ids(self) -> dict[str, str]:
        return {"visual": self.clip.spec.model_id, "audio": self.clap.spec.model_id, "text": self.clip.spec.model_id}


def modality_dims(clip: ModelSpec, clap: ModelSpec) -> dict[str, int]:
    """Vector sizes per named vector; ``content`` is the concatenation of the three."""
    return {"visual": clip.dim, "audio": clap.dim, "text": clip.dim, "content": 2 * clip.dim + clap.dim}


def collection_dims(clip: ModelSpec, clap: ModelSpec, cf_factors: int) -> dict[str, int]:
    """Every named vector of the media collection: the content side plus CF item factors, as ``cf``
    (dot product: what the model predicts for a user) and ``cf_sim`` (cosine: item-to-item)."""
    return {**modality_dims(clip, clap), "cf": cf_factors, "cf_sim": cf_factors}


def load_encoders(settings) -> Encoders:
    """Load both models on the configured device (slow: seconds for real weights)."""
    from embedder.encoders.clap import ClapEncoder
    from embedder.encoders.clip import ClipEncoder

    clip_spec, clap_spec = resolve_models(settings)
    return Encoders(
        clip=ClipEncoder(clip_spec, settings.device, settings.weights_dir),
        clap=ClapEncoder(clap_spec, settings.device, settings.weights_dir),
    )
