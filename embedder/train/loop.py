"""The training loop: sampled negatives, BCE (or BPR / sampled softmax), AdamW, early stopping on
validation NDCG@K, optional adversarial training (APR), resumable checkpoints.

Determinism: every epoch reseeds torch and numpy from (seed, epoch), so a run resumed from its
last checkpoint produces the same numbers as one that never stopped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedder.errors import EmbedderError
from embedder.progress import Progress
from embedder.train.config import TrainConfig
from embedder.train.data import TrainingData


@dataclass
class TrainResult:
    """What came out of a run."""

    run_dir: Path
    best_epoch: int
    best_ndcg: float
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    robustness: dict = field(default_factory=dict)
    head_parameters: int = 0
    privacy: dict | None = None  # what a differentially private run spent (embedder.train.dpsgd)


def padded_history(history: list[np.ndarray], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Histories as one users x longest matrix padded with ``pad``, and a 0/1 mask of real entries."""
    width = max((len(h) for h in history), default=0) or 1
    out = np.full((len(history), width), pad, np.int64)
    mask = np.zeros((len(history), width), np.float32)
    for u, h in enumerate(history):
        out[u, : len(h)] = h
        mask[u, : len(h)] = 1.0
    return out, mask


def training_context(data: TrainingData, device, padded: bool = False):
    """The tensors every forward pass reads; ``padded`` adds the history matrix a history user tower needs."""
    import torch

    flat = np.concatenate(data.history) if data.history else np.zeros(0, np.int64)
    offsets = np.cumsum([0] + [len(h) for h in data.history[:-1]]) if data.history else np.zeros(0, np.int64)
    pooled = np.zeros((len(data.users), data.feature_dim), np.float32)
    if data.feature_dim:
        for u, h in enumerate(data.history):
            if len(h):
                pooled[u] = data.features[h].mean(axis=0)
    known = np.zeros(len(data.items), bool)
    known[data.trainable_items] = True
    t = lambda a, dt=None: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    ctx = {
        "features": t(data.features, torch.float32),
        "known": t(known),
        "pooled": t(pooled, torch.float32),
        "history_flat": t(flat, torch.long),
        "history_offsets": t(offsets, torch.long),
    }
    if padded:
        matrix, mask = padded_history(data.history, len(data.items))
        ctx.update(history_padded=t(matrix, torch.long), history_mask=t(mask, torch.float32))
    return ctx


def _loss(kind: str, pos, neg):
    import torch
    from torch.nn import functional as F

    if kind == "bce":
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
            neg, torch.zeros_like(neg)
        )
    if kind == "bpr":
        return -F.logsigmoid(pos.unsqueeze(1) - neg).mean()
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=pos.device))


def _scores(u, p, n):
    return (u * p).sum(-1), (u.unsqueeze(1) * n).sum(-1)


def batch_loss(model, ctx, users, pos_items, neg_items, cfg: TrainConfig):
    """Loss of one batch; with APR, plus the loss under the worst-case perturbation within epsilon.

    APR (He et al., 2018): perturb the user and item embeddings along the gradient of the loss,
    scaled to ``epsilon`` times the mean embedding norm, and add ``weight`` times the loss there.
    """
    import torch

    u = model.user_vectors(users, ctx)
    p = model.item_vectors(pos_items, ctx)
    n = model.item_vectors(neg_items.reshape(-1), ctx).reshape(*neg_items.shape, -1)
    clean = _loss(cfg.loss.kind, *_scores(u, p, n))
    if not cfg.adversarial.enabled:
        return clean, clean.detach(), None
    grads = torch.autograd.grad(clean, [u, p, n], retain_graph=True)
    scale = cfg.adversarial.epsilon * torch.cat([u, p]).detach().norm(dim=-1).mean()
    deltas = [scale * torch.nn.functional.normalize(g.detach(), dim=-1) for g in grads]
    adv = _loss(cfg.loss.kind, *_scores(u + deltas[0], p + deltas[1], n + deltas[2]))
    return clean + cfg.adversarial.weight * adv, clean.detach(), adv.detach()


def all_vectors(model, ctx, n_users: int, n_items: int):
    """Every user and item vector, in eval mode."""
    import torch

    model.eval()
    device = ctx["known"].device
    with torch.no_grad():
        # In chunks: a history user tower gathers every history item's features.
        users = (
            torch.cat(
                [
                    model.user_vectors(torch.arange(start, min(start + 4096, n_users), device=device), ctx)
                    for start in range(0, n_users, 4096)
                ]
            )
            if n_users
            else torch.zeros(0)
        )
        items = model.item_vectors(torch.arange(n_items, device=device), ctx)
    model.train()
    return users.float().cpu().numpy(), items.float().cpu().numpy()


def ndcg_on(user_vecs, item_vecs, data: TrainingData, k: int, positive_shift: np.ndarray | None = None) -> float:
    """Mean NDCG@k over validation users, ranking all items except the user's training items.

    ``positive_shift`` (one value per user) is subtracted from the scores of the user's held-out
    items: the worst case of an adversarial perturbation of the item vectors.
    """
    from embedder.recommend.splits import ndcg_at_k

    if not data.val:
        return 0.0
    users = np.asarray(sorted(data.val))
    scores = user_vecs[users] @ item_vecs.T
    for row, u in enumerate(users):
        scores[row, data.history[u]] = -np.inf
        if positive_shift is not None:
            scores[row, sorted(data.val[u])] -= positive_shift[u]
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([ndcg_at_k(list(top[r]), data.val[u], k) for r, u in enumerate(users)]))


def robustness(model, ctx, data: TrainingData, cfg: TrainConfig, seed: int) -> dict:
    """Validation NDCG@K with item vectors clean, moved by random noise, and moved adversarially,
    at the training epsilon and at a few smaller ones.

    Both perturbations have norm epsilon times the mean item-vector norm. For dot-product scores
    the adversarial worst case moves each held-out item against the user vector and every other
    item towards it: 2 * epsilon * mean norm * |u| off the gap between them, which is what APR
    trains against.
    """
    users, items = all_vectors(model, ctx, len(data.users), len(data.items))
    k = cfg.optim.eval_k
    clean = ndcg_on(users, items, data, k)
    mean_norm = float(np.linalg.norm(items, axis=1).mean())
    user_norms = np.linalg.norm(users, axis=1)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(items.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = {"epsilon": cfg.adversarial.epsilon, "ndcg_clean": round(clean, 5), "by_epsilon": {}}
    for eps in sorted({0.05, 0.1, 0.2, cfg.adversarial.epsilon}):
        size = eps * mean_norm
        noisy = ndcg_on(users, items + size * noise, data, k)
        adversarial = ndcg_on(users, items, data, k, positive_shift=2 * size * user_norms)
        out["by_epsilon"][str(eps)] = {"ndcg_random_noise": round(noisy, 5), "ndcg_adversarial": round(adversarial, 5)}
    at = out["by_epsilon"][str(cfg.adversarial.epsilon)]
    out.update(at)  # the training epsilon's figures at the top level
    out["relative_drop_adversarial"] = round(1 - at["ndcg_adversarial"] / clean, 5) if clean else None
    return out


def _save_state(path: Path, model, optimizer, state: dict) -> None:
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, path / "model.safetensors")
    torch.save({"optimizer": optimizer.state_dict()}, path / "optimizer.pt")
    (path / "state.json").write_text(json.dumps(state, indent=2))


def _load_state(path: Path, model, optimizer) -> dict:
    import torch
    from safetensors.torch import load_file

    model.load_state_dict(load_file(path / "model.safetensors"))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True)["optimizer"])
    return json.loads((path / "state.json").read_text())


def train(
    data: TrainingData,
    cfg: TrainConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    device: str = "cpu",
    init_factors=None,
) -> TrainResult:
    """Train the two-tower head; keep the best epoch by validation NDCG@K in ``run_dir/model.safetensors``.

    ``init_factors`` (user factors, item factors) start the towers at a collaborative model
    (see :func:`embedder.train.model.init_from_factors`; with content features, the content MLP
    first learns to map content to the factors, :func:`~embedder.train.model.fit_content_to_factors`);
    the untrained start is then "epoch 0" and is kept if no epoch of training beats it on validation.
    Without validation pairs (the refit on all data), every epoch is kept and the last one is the
    result.
    """
    import torch

    from embedder.train.model import TwoTower, fit_content_to_factors, init_from_factors

    progress = progress or Progress()
    if len(data.train_pairs) == 0:
        raise EmbedderError("no training pairs after the validation split")
    torch.manual_seed(cfg.run.seed)
    model = TwoTower(len(data.users), len(data.items), data.feature_dim, cfg.model).to(device)
    ctx = training_context(data, device, padded=cfg.model.user_tower == "history")
    if init_factors is not None:
        user_factors, item_factors = (torch.as_tensor(f, device=device) for f in init_factors)
        init_from_factors(model, user_factors, item_factors, ctx["history_flat"], ctx["history_offsets"])
        if model.items.content is not None:  # cold items start from content mapped into the cf space
            fit_content_to_factors(
                model,
                ctx["features"],
                ctx["known"],
                user_factors,
                item_factors,
                ctx["history_flat"],
                ctx["history_offsets"],
            )
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    state = {"epoch": 0, "best_ndcg": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": [], "stopped_early": False}
    last = run_dir / "last"
    if resume:
        if not (last / "state.json").is_file():
            raise EmbedderError(f"nothing to resume in {run_dir}: no last/state.json")
        state = _load_state(last, model, optimizer)
    elif init_factors is not None or cfg.optim.max_epochs == 0:
        # The cf start is epoch 0: kept when no epoch of training beats it on validation (with
        # content, its cold items score through the content fitted to the cf factors).
        users, items = all_vectors(model, ctx, len(data.users), len(data.items))
        ndcg = ndcg_on(users, items, data, cfg.optim.eval_k)
        state["history"].append({"epoch": 0, "loss": None, f"val_ndcg@{cfg.optim.eval_k}": round(ndcg, 6)})
        state.update(best_ndcg=ndcg, best_epoch=0)
        _save_state(run_dir / "best", model, optimizer, state)
    trainable = torch.as_tensor(data.trainable_items, device=device)
    pairs = torch.as_tensor(data.train_pairs, device=device)
    steps = math.ceil(len(pairs) / cfg.optim.batch_size)
    while state["epoch"] < cfg.optim.max_epochs and not state["stopped_early"]:
        epoch = state["epoch"] + 1
        gen = torch.Generator(device="cpu").manual_seed(cfg.run.seed * 100_003 + epoch)
        torch.manual_seed(cfg.run.seed * 100_003 + epoch)  # dropout
        order = torch.randperm(len(pairs), generator=gen).to(device)
        progress.start(steps, f"epoch {epoch}")
        total, total_adv = 0.0, 0.0
        for step in range(steps):
            batch = pairs[order[step * cfg.optim.batch_size : (step + 1) * cfg.optim.batch_size]]
            neg_pos = torch.randint(len(trainable), (len(batch), cfg.loss.negatives), generator=gen).to(device)
            loss, clean, adv = batch_loss(model, ctx, batch[:, 0], batch[:, 1], trainable[neg_pos], cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(clean) * len(batch)
            total_adv += float(adv) * len(batch) if adv is not None else 0.0
            progress.advance(f"loss {float(clean):.4f}", "ok")
        progress.finish()
        users, items = all_vectors(model, ctx, len(data.users), len(data.items))
        ndcg = ndcg_on(users, items, data, cfg.optim.eval_k)
        # A refit has no validation pairs: its NDCG is unknown (None), not 0.0.
        val = round(ndcg, 6) if data.val else None
        row = {"epoch": epoch, "loss": round(total / len(pairs), 6), f"val_ndcg@{cfg.optim.eval_k}": val}
        if cfg.adversarial.enabled:
            row["adv_loss"] = round(total_adv / len(pairs), 6)
        state["history"].append(row)
        progress.note(json.dumps(row))
        state["epoch"] = epoch
        if ndcg > state["best_ndcg"] or not data.val:
            state.update(best_ndcg=ndcg, best_epoch=epoch, bad_epochs=0)
            _save_state(run_dir / "best", model, optimizer, state)
        else:
            state["bad_epochs"] += 1
            if state["bad_epochs"] >= cfg.optim.patience:
                state["stopped_early"] = True
        _save_state(last, model, optimizer, state)
    _load_state(run_dir / "best", model, optimizer)
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, run_dir / "model.safetensors")
    return TrainResult(
        run_dir=run_dir,
        best_epoch=state["best_epoch"],
        best_ndcg=state["best_ndcg"],
        history=state["history"],
        stopped_early=state["stopped_early"],
        robustness=robustness(model, ctx, data, cfg, cfg.run.seed),
        head_parameters=sum(p.numel() for p in model.parameters()),
    )


def learning_curve(history: list[dict], path: Path, k: int) -> None:
    """Loss and validation NDCG@K per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    trained = [r for r in history if r["loss"] is not None]  # epoch 0 (a cf start) has no loss yet
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    ax.plot([r["epoch"] for r in trained], [r["loss"] for r in trained], "o-", color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss", color="tab:blue")
    ax2 = ax.twinx()
    ndcgs = [float("nan") if r[f"val_ndcg@{k}"] is None else r[f"val_ndcg@{k}"] for r in history]  # refit: none
    ax2.plot(epochs, ndcgs, "s-", color="tab:orange", label=f"val NDCG@{k}")
    ax2.set_ylabel(f"val NDCG@{k}", color="tab:orange")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
