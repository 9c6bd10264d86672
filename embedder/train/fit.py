"""Train the two-tower head on events and write a versioned run directory: the library side of
``embedder train`` (the job in ``embedder/train/run.py``) and of ``embedder eval --methods trained``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from embedder.errors import EmbedderError
from embedder.progress import Progress
from embedder.recommend.cf import CFParams
from embedder.train.config import TrainConfig


def next_run_dir(out_dir: Path, name: str) -> Path:
    """``<out_dir>/<name>-v<N>`` with N one more than the highest existing version."""
    out_dir.mkdir(parents=True, exist_ok=True)
    versions = [int(m.group(1)) for p in out_dir.iterdir() if (m := re.fullmatch(rf"{re.escape(name)}-v(\d+)", p.name))]
    return out_dir / f"{name}-v{max(versions, default=0) + 1}"


def train_head(
    events,
    cfg: TrainConfig,
    *,
    media=None,
    run_dir: Path,
    resume: bool = False,
    device: str = "cpu",
    progress: Progress | None = None,
    extra_items: list[str] | None = None,
    feature_models: dict[str, str] | None = None,
    cf: CFParams | None = None,
):
    """Build data, train and write the run directory.

    With ``model.init = "cf"`` the towers start from ALS factors (``cf`` settings, factors =
    ``model.dim``) fitted on the training pairs. With ``optim.refit``, once early stopping has
    chosen the number of epochs on the validation pairs, the head is trained again on every pair
    for that many epochs, and that model is the one written and served.

    Returns (result, data, user vectors, item vectors, version, metrics).
    """
    from safetensors.torch import load_file

    from embedder.train.data import build_training_data, cf_factors
    from embedder.train.loop import all_vectors, learning_curve, train, training_context
    from embedder.train.model import TwoTower

    def init(data):
        use_cf = cfg.model.init == "cf" or (cfg.model.init == "auto" and data.feature_dim == 0)
        return cf_factors(data, cf or CFParams(), cfg.model.dim, cfg.run.seed) if use_cf else None

    data = build_training_data(
        events,
        media,
        cfg.model.modalities,
        val_fraction=cfg.optim.val_fraction,
        seed=cfg.run.seed,
        extra_items=extra_items,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.privacy.enabled:
        from embedder.train.dpsgd import train_private

        if resume:
            raise EmbedderError(
                "a differentially private run cannot be resumed: its privacy accounting "
                "starts over; train again without --resume"
            )
        init_factors = None
        result = train_private(data, cfg, run_dir, progress=progress, device=device)
    else:
        init_factors = init(data)
        result = train(data, cfg, run_dir, resume=resume, progress=progress, device=device, init_factors=init_factors)
    if cfg.optim.refit and not cfg.privacy.enabled:
        data = build_training_data(
            events, media, cfg.model.modalities, val_fraction=0, seed=cfg.run.seed, extra_items=extra_items
        )
        once = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"max_epochs": result.best_epoch})})
        train(data, once, run_dir / "refit", progress=progress, device=device, init_factors=init(data))
        (run_dir / "refit" / "model.safetensors").replace(run_dir / "model.safetensors")
    model = TwoTower(len(data.users), len(data.items), data.feature_dim, cfg.model).to(device)
    model.load_state_dict(load_file(run_dir / "model.safetensors"))
    users_vecs, items_vecs = all_vectors(
        model,
        training_context(data, device, padded=cfg.model.user_tower == "history"),
        len(data.users),
        len(data.items),
    )
    version = f"{run_dir.name}@{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    (run_dir / "config.json").write_text(
        json.dumps(
            {
                "version": version,
                "train_config": cfg.model_dump(),
                "feature_names": data.feature_names,
                "feature_dims": data.feature_dims,
                "feature_models": feature_models or {},
                "feature_dim": data.feature_dim,
                "users": len(data.users),
                "items": len(data.items),
            },
            indent=2,
        )
    )
    (run_dir / "index.json").write_text(
        json.dumps(
            {
                "users": data.users,
                "items": data.items,
                "known_items": [data.items[i] for i in data.trainable_items],
            }
        )
    )
    import numpy as np

    np.savez(run_dir / "features.npz", mean=data.feature_mean, std=data.feature_std)
    metrics = {
        "best_epoch": result.best_epoch,
        f"best_val_ndcg@{cfg.optim.eval_k}": round(result.best_ndcg, 6),
        "stopped_early": result.stopped_early,
        "epochs": len(result.history),
        "history": result.history,
        "robustness": result.robustness,
        "head_parameters": result.head_parameters,
        "adversarial": cfg.adversarial.model_dump(),
        "init": "cf" if init_factors is not None else "random",
        "cf_init": (cf or CFParams()).to_dict() if init_factors is not None else None,
        "refit_epochs": result.best_epoch if cfg.optim.refit and not cfg.privacy.enabled else None,
        "privacy": result.privacy,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    learning_curve(result.history, run_dir / "learning_curve.png", cfg.optim.eval_k)
    return result, data, users_vecs, items_vecs, version, metrics
