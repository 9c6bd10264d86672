"""``embedder train``: fine-tune the two-tower head on the interaction log, then serve it.

One readable job: load the config and the log, build training data from the frozen modality
vectors in the store, train with early stopping, write a versioned run directory (safetensors
checkpoint + JSON config, metrics, learning curve), and store ``rec`` vectors so that
``embedder recommend --strategy trained`` serves from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from embedder.errors import EmbedderError
from embedder.progress import Progress
from embedder.recommend.cf import CFParams
from embedder.train.config import TrainConfig
from embedder.train.export import write_rec
from embedder.train.fit import next_run_dir, train_head

if TYPE_CHECKING:
    from embedder.settings import Settings

__all__ = ["next_run_dir", "run_training", "train_head"]


def run_training(
    settings: Settings,
    cfg: TrainConfig,
    *,
    resume: Path | None = None,
    write: bool = True,
    progress: Progress | None = None,
) -> dict:
    """The whole job over the settings' interaction log and store."""
    from embedder.encoders.bundle import configured_model_ids
    from embedder.encoders.runtime import resolve_device
    from embedder.recommend.collections import open_collections
    from embedder.recommend.interactions import InteractionLog, default_log_path

    with InteractionLog(default_log_path(settings)) as log:
        events = log.all()
    if not events:
        raise EmbedderError("the interaction log is empty; run 'embedder interactions import FILE' first")
    if write and cfg.model.dim != settings.rec_dim:
        raise EmbedderError(
            f"the config's model.dim ({cfg.model.dim}) must equal the store's rec_dim "
            f"({settings.rec_dim}, EMBEDDER_REC_DIM) to write rec vectors"
        )
    device = resolve_device(cfg.run.device if cfg.run.device != "auto" else settings.device)
    run_dir = resume if resume is not None else next_run_dir(Path(cfg.run.out_dir), cfg.run.name)
    media, users = open_collections(settings)
    with media, users:
        has_content = (
            "content" in (media.collection_dims() or {})
            and media.count({"modalities": "visual"}) + media.count({"modalities": "audio"}) > 0
        )
        ingested = [r.payload["path"] for r in media.scroll({"modalities": "text"})] if has_content else []
        result, data, users_vecs, items_vecs, version, metrics = train_head(
            events,
            cfg,
            media=media if has_content else None,
            run_dir=run_dir,
            resume=resume is not None,
            device=device,
            progress=progress,
            extra_items=ingested,
            feature_models=configured_model_ids(settings) if has_content else None,
            cf=CFParams.from_settings(settings),
        )
        written = write_rec(users_vecs, items_vecs, data, media, users, version, run_dir=run_dir) if write else None
    return {"run_dir": str(run_dir), "version": version, "device": device, "metrics": metrics, "written": written}
