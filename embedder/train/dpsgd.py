"""Differentially private training of the two-tower head: DP-SGD with Opacus, the user as the
privacy unit.

One DP-SGD sample is one user, not one event: each step Poisson-samples users, and for each
sampled user predicts ``positives_per_user`` items held out of their history (plus sampled
negatives) from the rest of it. Every user's whole gradient is clipped to ``max_grad_norm``
before the Gaussian noise is added, so the released model, with every epoch of it, is
(epsilon, delta)-DP with respect to adding or removing one user and all their events. The model
holds no per-user parameter (the history user tower), so the whole model can be released; each
user's vector is recomputed from their own history when it is served.

What this does not cover, said plainly: the ``cf`` (ALS) vectors and the interaction log itself
are not private; the validation NDCG printed per epoch reads held-out events (it is reported,
never used to choose the model: the last epoch is kept); hyper-parameters tuned on the same data
spend privacy that no accountant here counts.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from embedder.errors import EmbedderError
from embedder.progress import Progress
from embedder.train.config import TrainConfig
from embedder.train.data import TrainingData


def privacy_delta(cfg: TrainConfig, n_users: int) -> float:
    """The delta the budget is spent at: the configured one, else min(1e-5, 0.1 / users)."""
    return cfg.privacy.delta if cfg.privacy.delta is not None else min(1e-5, 0.1 / max(n_users, 1))


class UserBatchScorer(nn.Module):
    """Scores, per sampled user, their held-out items and negatives: one row per user, so that
    Opacus sees the user as the sample. The data-wide tensors are buffers, not parameters."""

    def __init__(self, model, features, known):
        super().__init__()
        self.model = model
        self.register_buffer("features", features, persistent=False)
        self.register_buffer("known", known, persistent=False)

    def forward(self, history, mask, items):
        users = self.model.users(history, mask, self.features)  # B x d
        candidates = self.model.items(items, self.features, self.known)  # B x K x d
        return (users.unsqueeze(1) * candidates).sum(-1)  # B x K


class PerUserBCE(nn.Module):
    """BCE of the first ``positives`` columns as positives and the rest as negatives, one value
    per user with ``reduction = "none"`` (what ghost clipping asks of a criterion)."""

    def __init__(self, positives: int):
        super().__init__()
        self.positives = positives
        self.reduction = "mean"

    def forward(self, logits, _targets=None):
        pos, neg = logits[:, : self.positives], logits[:, self.positives :]
        per_user = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos), reduction="none").mean(
            1
        ) + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none").mean(1)
        if self.reduction == "none":
            return per_user
        return per_user.sum() if self.reduction == "sum" else per_user.mean()


class _BatchMaker:
    """Turns a batch of user indices into (history, mask, candidates) tensors, seeded."""

    def __init__(self, data: TrainingData, cfg: TrainConfig, rng: np.random.Generator):
        self.history = data.history
        self.trainable = data.trainable_items
        self.pad = len(data.items)
        self.positives = cfg.privacy.positives_per_user
        self.negatives = cfg.loss.negatives
        self.max_history = cfg.privacy.max_history
        self.rng = rng

    def __call__(self, users: np.ndarray):
        rng, p = self.rng, self.positives
        rows, targets = [], np.zeros((len(users), p), np.int64)
        for row, u in enumerate(users):
            h = self.history[u]
            chosen = rng.choice(len(h), size=p, replace=len(h) < p)
            targets[row] = h[chosen]
            rest = np.delete(h, np.unique(chosen))
            if len(rest) == 0:  # a user with one item: predict it from itself rather than from nothing
                rest = h
            if len(rest) > self.max_history:
                rest = rng.choice(rest, size=self.max_history, replace=False)
            rows.append(rest)
        width = max((len(r) for r in rows), default=1)
        history = np.full((len(users), width), self.pad, np.int64)
        mask = np.zeros((len(users), width), np.float32)
        for row, rest in enumerate(rows):
            history[row, : len(rest)] = rest
            mask[row, : len(rest)] = 1.0
        negatives = self.trainable[rng.integers(len(self.trainable), size=(len(users), p * self.negatives))]
        return history, mask, np.concatenate([targets, negatives], axis=1)


def train_private(
    data: TrainingData, cfg: TrainConfig, run_dir: Path, *, progress: Progress | None = None, device: str = "cpu"
):
    """See :func:`_train_private`; Opacus's notes for developers are kept from the user's terminal:
    that its RNG is not the cryptographic one (runs here are seeded, to be reproducible), that
    backward hooks fire on outputs (how ghost clipping works), and the accountants' numerical
    remarks (the epsilon reported is the PRV accountant's, which the tests check)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        warnings.filterwarnings("ignore", module=r"opacus(\.|$)")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        return _train_private(data, cfg, run_dir, progress=progress, device=device)


def _train_private(data: TrainingData, cfg: TrainConfig, run_dir: Path, *, progress: Progress | None, device: str):
    """Train the head with DP-SGD for exactly ``optim.max_epochs`` epochs at the configured budget.

    The noise multiplier is chosen by Opacus so that the whole run spends ``privacy.epsilon`` at
    :func:`privacy_delta`; the epsilon actually spent (PRV accountant) is reported. There is no
    early stopping (choosing an epoch on held-out events would read private data outside the
    budget), no ALS start and no refit (a second pass would spend the budget twice).

    Returns:
        :class:`~embedder.train.loop.TrainResult` with ``privacy`` filled in.
    """
    from opacus import PrivacyEngine
    from safetensors.torch import save_file
    from torch.utils.data import DataLoader, TensorDataset

    from embedder.train.loop import TrainResult, all_vectors, ndcg_on, robustness, training_context
    from embedder.train.model import TwoTower

    progress = progress or Progress()
    users = np.asarray([u for u, h in enumerate(data.history) if len(h)], np.int64)
    if len(users) < 2:
        raise EmbedderError("differentially private training needs events from at least 2 users")
    torch.manual_seed(cfg.run.seed)
    rng = np.random.default_rng(cfg.run.seed)
    model = TwoTower(len(data.users), len(data.items), data.feature_dim, cfg.model).to(device)
    ctx = training_context(data, device, padded=True)
    scorer = UserBatchScorer(model, ctx["features"], ctx["known"]).to(device)
    if cfg.privacy.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.privacy.lr, momentum=0.9)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.privacy.lr, weight_decay=cfg.optim.weight_decay)
    batch_size = min(cfg.optim.batch_size, len(users))
    loader = DataLoader(
        TensorDataset(torch.as_tensor(users)),
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(cfg.run.seed),
    )
    delta = privacy_delta(cfg, len(users))
    engine = PrivacyEngine(accountant="prv")
    dp_model, dp_optimizer, dp_loss, dp_loader = engine.make_private_with_epsilon(
        module=scorer,
        optimizer=optimizer,
        criterion=PerUserBCE(cfg.privacy.positives_per_user),
        data_loader=loader,
        target_epsilon=cfg.privacy.epsilon,
        target_delta=delta,
        epochs=cfg.optim.max_epochs,
        max_grad_norm=cfg.privacy.max_grad_norm,
        grad_sample_mode="ghost",
        poisson_sampling=True,
    )
    make_batch = _BatchMaker(data, cfg, rng)
    k = cfg.optim.eval_k
    history, steps = [], 0
    for epoch in range(1, cfg.optim.max_epochs + 1):
        progress.start(len(dp_loader), f"epoch {epoch} (DP)")
        total, seen = 0.0, 0
        for (batch,) in dp_loader:
            hist, mask, candidates = (torch.as_tensor(a, device=device) for a in make_batch(batch.numpy()))
            dp_optimizer.zero_grad(set_to_none=True)
            loss = dp_loss(dp_model(hist, mask, candidates), None)
            loss.backward()
            dp_optimizer.step()
            steps += 1
            value = float(loss.item())  # the mean loss of this batch, before clipping and noise
            total += value * len(batch)
            seen += len(batch)
            progress.advance(f"loss {value:.4f}", "ok")
        progress.finish()
        user_vecs, item_vecs = all_vectors(model, ctx, len(data.users), len(data.items))
        row = {
            "epoch": epoch,
            "loss": round(total / max(seen, 1), 6),
            f"val_ndcg@{k}": round(ndcg_on(user_vecs, item_vecs, data, k), 6),
            "epsilon_spent": round(float(engine.get_epsilon(delta)), 4),
        }
        history.append(row)
        progress.note(json.dumps(row))
    run_dir.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: v.detach().cpu().contiguous() for name, v in model.state_dict().items()}, run_dir / "model.safetensors"
    )
    privacy = {
        "unit": "user",
        "mechanism": "DP-SGD (Opacus, ghost clipping, Poisson sampling)",
        "accountant": "prv",
        "target_epsilon": cfg.privacy.epsilon,
        "epsilon": round(float(engine.get_epsilon(delta)), 4),
        "delta": delta,
        "noise_multiplier": round(float(dp_optimizer.noise_multiplier), 4),
        "max_grad_norm": cfg.privacy.max_grad_norm,
        "sample_rate": round(batch_size / len(users), 6),
        "expected_batch_users": batch_size,
        "users": int(len(users)),
        "epochs": cfg.optim.max_epochs,
        "steps": steps,
    }
    last = history[-1]
    return TrainResult(
        run_dir=run_dir,
        best_epoch=cfg.optim.max_epochs,
        best_ndcg=last[f"val_ndcg@{k}"],
        history=history,
        stopped_early=False,
        robustness=robustness(model, ctx, data, cfg, cfg.run.seed),
        head_parameters=sum(p.numel() for p in model.parameters()),
        privacy=privacy,
    )
