"""``embedder train``: fine-tune the two-tower head on the interaction log, then serve it.

One readable job over the log's events (:meth:`embedder.library.Library.train_head` reads them
and opens the store): build training data from the frozen modality vectors in the store, train
with early stopping, write a versioned run directory (safetensors checkpoint + JSON config,
metrics, learning curve), and store ``rec`` vectors so that ``embedder recommend --strategy
trained`` serves from them.
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
    from embedder.store import VectorStore

__all__ = ["next_run_dir", "run_training", "train_head"]


def run_training(
    events: list,
    cfg: TrainConfig,
    media: VectorStore,
    users: VectorStore,
    *,
    rec_dim: int,
    device: str,
    feature_models: dict | None,
    cf: CFParams,
    resume: Path | None = None,
    write: bool = True,
    progress: Progress | None = None,
) -> dict:
    """The whole job over ``events``, with the frozen modality vectors of ``media`` as features.

    ``rec_dim`` is the store's ``rec`` vector size (the config's ``model.dim`` must match it to
    write), ``device`` the settings' device (the config's ``run.device`` wins unless ``auto``),
    ``feature_models`` the encoders that made the stored vectors (recorded with the run) and ``cf``
    the ALS settings of the head's collaborative start. Writes ``rec`` vectors into ``media`` and
    ``users`` unless ``write`` is false.
    """
    from embedder.encoders.runtime import resolve_device

    if not events:
        raise EmbedderError("the interaction log is empty; run 'embedder interactions import FILE' first")
    if write and cfg.model.dim != rec_dim:
        raise EmbedderError(
            f"the config's model.dim ({cfg.model.dim}) must equal the store's rec_dim "
            f"({rec_dim}, EMBEDDER_REC_DIM) to write rec vectors"
        )
    device = resolve_device(cfg.run.device if cfg.run.device != "auto" else device)
    run_dir = resume if resume is not None else next_run_dir(Path(cfg.run.out_dir), cfg.run.name)
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
        feature_models=feature_models if has_content else None,
        cf=cf,
    )
    written = write_rec(users_vecs, items_vecs, data, media, users, version, run_dir=run_dir) if write else None
    return {"run_dir": str(run_dir), "version": version, "device": device, "metrics": metrics, "written": written}
