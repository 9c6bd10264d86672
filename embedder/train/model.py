"""The two towers: a small head over frozen modality vectors (items) and a user tower."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ItemTower(nn.Module):
    """MLP over an item's frozen modality vectors, plus an optional free vector per warm item.

    Cold items (no training events) use the unknown id row, which stays zero, so their vector
    comes from content alone; that is what makes them recommendable.
    """

    def __init__(self, n_items: int, feature_dim: int, dim: int, hidden: int, dropout: float, use_id: bool):
        super().__init__()
        self.n_items = n_items
        self.content = (
            nn.Sequential(nn.Linear(feature_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
            if feature_dim
            else None
        )
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=n_items) if use_id else None
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=0.05)
            with torch.no_grad():
                self.ids.weight[n_items].zero_()

    def forward(self, items: torch.Tensor, features: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        out = 0
        if self.content is not None:
            out = self.content(features[items])
        if self.ids is not None:
            out = out + self.ids(torch.where(known[items], items, torch.full_like(items, self.n_items)))
        return out


class UserTower(nn.Module):
    """A user-id vector plus a projection of the user's pooled history.

    The history is pooled twice, both cheaply: the mean of the history items' free vectors
    (an embedding bag over the item tower's id table) and the mean of their frozen features.
    """

    def __init__(self, n_users: int, feature_dim: int, dim: int, use_id: bool):
        super().__init__()
        self.ids = nn.Embedding(n_users, dim) if use_id else None
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=0.05)
        self.history_features = nn.Linear(feature_dim, dim, bias=False) if feature_dim else None

    def forward(self, users, pooled_features, item_ids_table, history_flat, history_offsets) -> torch.Tensor:
        out = 0
        if self.ids is not None:
            out = self.ids(users)
        if item_ids_table is not None:
            bag = F.embedding_bag(history_flat, item_ids_table, history_offsets, mode="mean")
            out = out + bag[users]
        if self.history_features is not None:
            out = out + self.history_features(pooled_features[users])
        return out


class HistoryUserTower(nn.Module):
    """A user as the mean of their history items' vectors, plus a projection of the mean of those
    items' frozen features: no parameter belongs to one user, so a model trained with DP-SGD can
    be released whole, and a user's vector is recomputed from their own history when served.

    The history items have a table of their own (not the item tower's): each module then runs
    once per forward pass, which per-user gradient clipping (Opacus ghost clipping) requires.
    """

    def __init__(self, n_items: int, feature_dim: int, dim: int):
        super().__init__()
        self.n_items = n_items
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        nn.init.normal_(self.items.weight, std=0.05)
        with torch.no_grad():
            self.items.weight[n_items].zero_()
        self.history_features = nn.Linear(feature_dim, dim, bias=False) if feature_dim else None

    def forward(self, history: torch.Tensor, mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``history``: users x H item indices, padded with ``n_items``; ``mask``: 1.0 where real."""
        weights = (mask / mask.sum(1, keepdim=True).clamp(min=1)).unsqueeze(-1)
        out = (self.items(history) * weights).sum(1)
        if self.history_features is not None:
            rows = features[history.clamp(max=features.shape[0] - 1)]  # padding rows are masked out
            out = out + self.history_features((rows * weights).sum(1))
        return out


class TwoTower(nn.Module):
    """Scores are dot products of the two towers' outputs."""

    def __init__(self, n_users: int, n_items: int, feature_dim: int, cfg):
        super().__init__()
        self.items = ItemTower(n_items, feature_dim, cfg.dim, cfg.hidden, cfg.dropout, cfg.item_id_embedding)
        if getattr(cfg, "user_tower", "ids") == "history":
            self.users = HistoryUserTower(n_items, feature_dim, cfg.dim)
        else:
            self.users = UserTower(n_users, feature_dim, cfg.dim, cfg.user_id_embedding)
        if self.items.ids is None and self.items.content is None:
            raise ValueError("the item tower needs item ids or content features")

    def user_vectors(self, users, ctx) -> torch.Tensor:
        if isinstance(self.users, HistoryUserTower):
            return self.users(ctx["history_padded"][users], ctx["history_mask"][users], ctx["features"])
        table = self.items.ids.weight if self.items.ids is not None else None
        return self.users(users, ctx["pooled"], table, ctx["history_flat"], ctx["history_offsets"])

    def item_vectors(self, items, ctx) -> torch.Tensor:
        return self.items(items, ctx["features"], ctx["known"])


def init_from_factors(model: TwoTower, user_factors, item_factors, history_flat, history_offsets) -> None:
    """Start the towers at a collaborative model: item id vectors = ALS item factors, and user id
    vectors set so that id + mean of the history's item vectors = ALS user factors. The content
    parts start at zero, so before any step the head scores exactly like ALS.

    Args:
        user_factors, item_factors: tensors (users x dim, items x dim); rows of items without
            factors (cold items) are zero.
    """
    if model.items.ids is None or model.users.ids is None:
        raise ValueError("init from cf factors needs item and user id embeddings")
    with torch.no_grad():
        model.items.ids.weight[: item_factors.shape[0]] = item_factors
        model.items.ids.weight[model.items.n_items].zero_()
        bag = F.embedding_bag(history_flat, model.items.ids.weight, history_offsets, mode="mean")
        model.users.ids.weight.copy_(user_factors - bag)
        if model.items.content is not None:
            last = model.items.content[-1]
            last.weight.zero_()
            last.bias.zero_()
        if model.users.history_features is not None:
            model.users.history_features.weight.zero_()


def fit_content_to_factors(
    model: TwoTower,
    features: torch.Tensor,
    known: torch.Tensor,
    user_factors: torch.Tensor,
    item_factors: torch.Tensor,
    history_flat: torch.Tensor,
    history_offsets: torch.Tensor,
    steps: int = 300,
) -> float:
    """Give the content MLP a start too, after :func:`init_from_factors`: fit it to predict the
    warm items' ALS factors from their features (mean squared error), then make each warm item's
    id vector the rest of its factors (and the users' id vectors follow). Warm items still score
    exactly as ALS, and cold items, which have content only, get the content's estimate of the
    factors they would have: the start is then a fair candidate for early stopping with content
    too (a recommender that maps content into the collaborative space, as cold-start work does).

    Returns:
        The fit's last mean squared error.
    """
    content = model.items.content
    warm = known.nonzero().squeeze(1)
    if content is None or len(warm) == 0:
        return 0.0
    x, y = features[warm], item_factors[warm]
    optimizer = torch.optim.Adam(content.parameters(), lr=1e-2, weight_decay=1e-4)
    was_training = content.training
    content.train()
    loss = torch.zeros(())
    for _ in range(steps):
        loss = F.mse_loss(content(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    content.eval()  # the residual is taken as items are scored: without dropout
    with torch.no_grad():
        model.items.ids.weight[warm] = y - content(x)
        bag = F.embedding_bag(history_flat, model.items.ids.weight, history_offsets, mode="mean")
        model.users.ids.weight.copy_(user_factors - bag)
    content.train(was_training)
    return float(loss.detach())
