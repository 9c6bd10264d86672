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
        """The model id behind each modality's vectors (the provenance stored on points)."""
        return modality_model_ids(self.clip.spec, self.clap.spec)


def modality_model_ids(clip: ModelSpec, clap: ModelSpec) -> dict[str, str]:
    """Which model makes each modality's vectors: frames and item text by CLIP, audio by CLAP."""
    return {"visual": clip.model_id, "audio": clap.model_id, "text": clip.model_id}


def configured_model_ids(settings) -> dict[str, str]:
    """:func:`modality_model_ids` of the models ``settings`` name, without loading them."""
    return modality_model_ids(*resolve_models(settings))


def modality_dims(clip: ModelSpec, clap: ModelSpec) -> dict[str, int]:
    """Vector sizes per named vector; ``content`` is the concatenation of the three."""
    return {"visual": clip.dim, "audio": clap.dim, "text": clip.dim, "content": 2 * clip.dim + clap.dim}


def collection_dims(clip: ModelSpec, clap: ModelSpec, cf_factors: int, rec_dim: int) -> dict[str, int]:
    """Every named vector of the media collection: the content side; CF item factors as ``cf``
    (dot product: what the model predicts for a user) and ``cf_sim`` (cosine: item-to-item); and
    ``rec``, the trained two-tower head's item vectors (dot product)."""
    return {**modality_dims(clip, clap), "cf": cf_factors, "cf_sim": cf_factors, "rec": rec_dim}


def schema_for(settings) -> dict[str, int]:
    """The media collection's named vectors for these settings."""
    clip, clap = resolve_models(settings)
    return collection_dims(clip, clap, settings.cf_factors, settings.rec_dim)


def users_schema(settings) -> dict[str, int]:
    """The users collection's named vectors: CF user factors and the trained head's user vectors."""
    return {"cf": settings.cf_factors, "rec": settings.rec_dim}


def load_encoders(settings) -> Encoders:
    """Load both models on the configured device (slow: seconds for real weights)."""
    from embedder.encoders.clap import ClapEncoder
    from embedder.encoders.clip import ClipEncoder

    clip_spec, clap_spec = resolve_models(settings)
    return Encoders(
        clip=ClipEncoder(clip_spec, settings.device, settings.weights_dir),
        clap=ClapEncoder(clap_spec, settings.device, settings.weights_dir),
    )
