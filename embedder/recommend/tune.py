"""Tune the collaborative model on a validation split carved from the training events.

The tuner is given the training part of an evaluation split and nothing else: it holds out a
validation part of *those* events (the same kind of split, with its own seed), fits ALS for each
point of a small grid, and ranks validation users by the factors' dot product with their training
items excluded, which is exactly the order the ``cf`` query returns. The test part is never seen,
so the tuned settings can be compared with other methods on test honestly.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from embedder.errors import EmbedderError
from embedder.recommend.cf import CFParams, fit_cf
from embedder.recommend.interactions import Interaction
from embedder.recommend.splits import ndcg_at_k, split_events

# A small grid: the weighting and its scale, and regularisation (which only matters relative to
# the confidences). Factors stay fixed: they are the size of the stored `cf` vectors.
DEFAULT_GRID = {
    "weighting": ["log1p", "bm25"],
    "alpha": [0.25, 0.5, 1.0, 2.0],
    "regularization": [0.01, 0.1, 1.0, 3.0, 10.0, 30.0],
}
VALIDATION_SEED_OFFSET = 1000  # the validation split must not coincide with the test split's draw


def validation_ndcg(
    train: list[Interaction], val: list[Interaction], params: CFParams, seed: int, k: int = 10
) -> float:
    """NDCG@k of ALS fitted on ``train`` for the users of ``val``, training items excluded."""
    model = fit_cf(train, params, seed=seed)
    u_index = {u: n for n, u in enumerate(model.users)}
    i_index = {i: n for n, i in enumerate(model.items)}
    seen: dict[str, list[int]] = defaultdict(list)
    for e in train:
        if e.weight > 0:
            seen[e.user].append(i_index[e.item])
    relevant: dict[str, set[str]] = defaultdict(set)
    for e in val:
        if e.weight > 0:
            relevant[e.user].add(e.item)
    users = sorted(u for u in relevant if u in u_index)
    if not users:
        return 0.0
    scores = model.user_factors[[u_index[u] for u in users]] @ model.item_factors.T
    out = []
    for row, user in enumerate(users):
        scores[row, seen[user]] = -np.inf
        top = np.argpartition(-scores[row], min(k, scores.shape[1] - 1))[:k]
        ranked = [model.items[i] for i in top[np.argsort(-scores[row, top], kind="stable")]]
        out.append(ndcg_at_k(ranked, relevant[user], k))
    return float(np.mean(out))


def tune_cf(
    train: list[Interaction],
    *,
    base: CFParams,
    split: str = "random-holdout",
    seed: int = 0,
    grid: dict[str, list] | None = None,
    k: int = 10,
    progress=None,
) -> dict:
    """Pick the CF settings with the best validation NDCG@k; ``train`` is all the tuner sees.

    Args:
        train: the training events of an evaluation split (or the whole log, before training).
        base: settings not in the grid (factors, iterations) come from here.
        split: how to carve validation out of ``train``; ``cold-items`` tunes on a random holdout.
        grid: setting name -> values; :data:`DEFAULT_GRID` by default.

    Returns:
        ``{"chosen": CFParams, "validation": {...}, "trials": [...]}``, trials best first.
    """
    grid = grid or DEFAULT_GRID
    how = split if split in ("leave-last-out", "random-holdout", "time") else "random-holdout"
    carved = split_events(train, how, seed=seed + VALIDATION_SEED_OFFSET)
    if not carved.test:
        raise EmbedderError("too few events to carve a validation split for tuning")
    names = sorted(grid)
    trials = []
    combos = list(itertools.product(*(grid[n] for n in names)))
    if progress is not None:
        progress.start(len(combos), "tuning ALS")
    for values in combos:
        params = replace(base, **dict(zip(names, values)))
        trials.append(
            {
                "params": params.to_dict(),
                f"val_ndcg@{k}": round(validation_ndcg(carved.train, carved.test, params, seed, k), 5),
            }
        )
        if progress is not None:
            progress.advance(str(dict(zip(names, values))), "ok")
    if progress is not None:
        progress.finish()
    trials.sort(key=lambda t: -t[f"val_ndcg@{k}"])
    return {
        "chosen": CFParams(**trials[0]["params"]),
        "validation": {
            "split": how,
            "seed": seed + VALIDATION_SEED_OFFSET,
            "train_events": len(carved.train),
            "validation_events": len(carved.test),
            "metric": f"ndcg@{k}",
        },
        "trials": trials,
    }


CONFIG_KEYS = {
    "weighting": "cf_weighting",
    "alpha": "cf_alpha",
    "regularization": "cf_regularization",
    "iterations": "cf_iterations",
    "factors": "cf_factors",
    "bm25_k1": "cf_bm25_k1",
}


def save_cf_settings(params: CFParams, path: str | Path) -> list[str]:
    """Write ``params`` as the ``cf_*`` keys of a settings TOML file, keeping its other lines.

    A key already in the file has its line replaced; a missing one is appended. Returns the
    lines written. The next ``embedder interactions train --config FILE`` (or with the file as
    ``./embedder.toml``) fits with them.
    """
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    lines = text.splitlines()
    written = []
    for field, key in CONFIG_KEYS.items():
        value = getattr(params, field)
        line = f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value!r}"
        written.append(line)
        pattern = re.compile(rf"^\s*{key}\s*=")
        matches = [n for n, old in enumerate(lines) if pattern.match(old)]
        if matches:
            lines[matches[0]] = line
        else:
            if any(re.match(r"^\s*\[", old) for old in lines):
                raise EmbedderError(
                    f"{path} has [sections]; add these top-level settings by hand: " + "; ".join(written)
                )
            lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return written
