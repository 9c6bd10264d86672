"""Tune the collaborative model on a validation split carved from the training events.

The tuner is given the training part of an evaluation split and nothing else: it holds out a
validation part of *those* events (the same kind of split, with its own seed), fits ALS for each
point of a small grid, and ranks validation users by the factors' dot product with their training
items excluded, which is exactly the order the ``cf`` query returns. The test part is never seen,
so the tuned settings can be compared with other methods on test honestly.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from embedder.errors import EmbedderError
from embedder.recommend.cf import CFParams, fit_cf
from embedder.recommend.interactions import Interaction
from embedder.recommend.splits import ndcg_at_k, split_events

# Each setting is searched in turn, the others held at their best so far (a coordinate search),
# and a numeric grid whose best value sits at an open edge is widened past it until the best is
# interior, so a chosen value is never just the top of an arbitrary grid. Floors (beta 0, shrink 0)
# are real edges. ALS's factors are searched only where the caller may change them (an
# evaluation's scratch store): elsewhere they are the size of the stored `cf` vectors.
DEFAULT_GRID = {
    "weighting": ["log1p", "bm25"],
    "regularization": [0.01, 0.1, 1.0, 3.0, 10.0, 30.0],
    "alpha": [0.25, 0.5, 1.0, 2.0],
}
FACTORS_GRID = [32, 64, 128, 256]
# Item-to-item models, searched as ALS is (coordinate_search).
I2I_GRIDS: dict[str, dict[str, list]] = {
    "ease": {"l2": [25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0], "neighbours": [100, 200, 400]},
    "rp3beta": {
        "alpha": [0.5, 0.75, 1.0, 1.25],
        "beta": [0.0, 0.2, 0.4, 0.6, 0.8],
        "neighbours": [50, 100, 200, 400],
    },
    "itemknn": {"neighbours": [25, 50, 100, 200, 400], "shrink": [0.0, 10.0, 50.0, 200.0]},
}
FLOORS = {"beta": 0.0, "shrink": 0.0}
MAX_WIDENINGS = 4
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


def carve_validation(train: list[Interaction], split: str, seed: int):
    """The validation split carved from ``train`` (the same kind of split, with its own seed)."""
    how = split if split in ("leave-last-out", "random-holdout", "time") else "random-holdout"
    carved = split_events(train, how, seed=seed + VALIDATION_SEED_OFFSET)
    if not carved.test:
        raise EmbedderError("too few events to carve a validation split for tuning")
    return how, carved


def tune_cf(
    train: list[Interaction],
    *,
    base: CFParams,
    split: str = "random-holdout",
    seed: int = 0,
    grid: dict[str, list] | None = None,
    k: int = 10,
    progress=None,
    tune_factors: bool = False,
) -> dict:
    """Pick the CF settings with the best validation NDCG@k; ``train`` is all the tuner sees.

    Args:
        train: the training events of an evaluation split (or the whole log, before training).
        base: settings not in the grid (factors, iterations) come from here.
        split: how to carve validation out of ``train``; ``cold-items`` tunes on a random holdout.
        grid: setting name -> values; :data:`DEFAULT_GRID` by default (searched one setting at
            a time, widened past an edge: :func:`coordinate_search`).
        tune_factors: search the factors too (:data:`FACTORS_GRID`), where the caller can store
            vectors of another size.

    Returns:
        ``{"chosen": CFParams, "validation": {...}, "trials": [...], "at_edge": [...]}``,
        trials best first.
    """
    grid = dict(grid or DEFAULT_GRID)
    if tune_factors and "factors" not in grid:
        grid["factors"] = FACTORS_GRID
    how, carved = carve_validation(train, split, seed)
    search = coordinate_search(
        base,
        grid,
        lambda params: validation_ndcg(carved.train, carved.test, params, seed, k),
        progress=progress,
        label="tuning ALS",
    )
    return _report(search, how, carved, seed, k)


def _report(search, how: str, carved, seed: int, k: int) -> dict:
    """A tuner's answer: the chosen settings, the validation split, every trial best first, and
    the settings still at the edge of their grid."""
    key = f"val_ndcg@{k}"
    return {
        "chosen": search.best,
        "validation": {
            "split": how,
            "seed": seed + VALIDATION_SEED_OFFSET,
            "train_events": len(carved.train),
            "validation_events": len(carved.test),
            "metric": f"ndcg@{k}",
            f"best_ndcg@{k}": search.scored[search.best],
        },
        "trials": sorted(({"params": p.to_dict(), key: v} for p, v in search.scored.items()), key=lambda t: -t[key]),
        "at_edge": search.at_edge,
    }


@dataclass
class Search:
    """What :func:`coordinate_search` found: the best settings, every scored setting, and the
    settings whose best value is still the edge of their (widened) grid."""

    best: object
    scored: dict
    at_edge: list[str]


def coordinate_search(base, grid: dict[str, list], score, *, progress=None, label: str = "tuning") -> Search:
    """Search ``grid`` one setting at a time from ``base`` (a frozen dataclass), widening a
    numeric setting's grid past an open edge while its best sits there (:data:`MAX_WIDENINGS`
    times at most). ``score(params) -> float`` is called once per distinct setting."""
    scored: dict = {}
    at_edge: list[str] = []
    if progress is not None:
        progress.start(sum(len(v) for v in grid.values()), label)

    def measured(params) -> float:
        if params not in scored:
            scored[params] = round(score(params), 5)
            if progress is not None:
                progress.advance(str({n: getattr(params, n) for n in grid}), "ok")
        return scored[params]

    best = base
    for name, values in grid.items():
        values = list(values)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and len(values) > 1
        for _ in range(MAX_WIDENINGS + 1):
            results = [measured(replace(best, **{name: v})) for v in values]
            best_at = int(np.argmax(results))
            chosen = values[best_at]
            wider = _widened(values, best_at, name) if numeric else None
            if wider is None:
                break
            values = wider
        else:
            at_edge.append(name)
        best = replace(best, **{name: chosen})
    if progress is not None:
        progress.finish()
    measured(best)
    return Search(best, scored, at_edge)


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


def validation_ndcg_item_item(
    train: list[Interaction], val: list[Interaction], params, k: int = 10, model=None
) -> float:
    """NDCG@k of an item-to-item model fitted on ``train`` for the users of ``val``, every item
    they have in ``train`` excluded: the order the sparse query returns, computed with scipy."""
    from embedder.recommend.itemitem import fit_item_item, weighted_matrix

    model = model or fit_item_item(train, params)
    relevant: dict[str, set[str]] = defaultdict(set)
    for e in val:
        if e.weight > 0:
            relevant[e.user].add(e.item)
    x, users, items = weighted_matrix(train, params.weighting, model.items)
    index = {i: n for n, i in enumerate(items)}
    seen: dict[str, list[int]] = defaultdict(list)
    for e in train:
        if e.item in index:
            seen[e.user].append(index[e.item])
    rows = [n for n, u in enumerate(users) if u in relevant]
    if not rows:
        return 0.0
    scores = (x[rows] @ model.weights).toarray()
    out = []
    for row, n in enumerate(rows):
        user = users[n]
        scores[row, seen[user]] = -np.inf
        top = np.argpartition(-scores[row], min(k, scores.shape[1] - 1))[:k]
        ranked = [items[i] for i in top[np.argsort(-scores[row, top], kind="stable")]]
        out.append(ndcg_at_k(ranked, relevant[user], k))
    # Users whose items the model does not know still count, as zero: as they do on test.
    known = set(users)
    missing = sum(1 for u in relevant if u not in known)
    return float(np.sum(out) / (len(out) + missing))


def _widened(values: list, best_at: int, name: str) -> list | None:
    """The next value past the edge where the best sits, or ``None`` at a floor."""
    if best_at == len(values) - 1:
        step = values[-1] / values[-2] if values[-2] > 0 else 2.0
        nxt = values[-1] * step if step > 1 else values[-1] + (values[-1] - values[-2])
        return [*values, type(values[-1])(round(nxt, 6))]
    if best_at == 0:
        floor = FLOORS.get(name)
        if floor is not None and values[0] <= floor:
            return None
        step = values[1] / values[0] if values[0] > 0 else 2.0
        nxt = values[0] / step if step > 1 else values[0] - (values[1] - values[0])
        if floor is not None:
            nxt = max(floor, nxt)
        if name == "neighbours" and nxt < 1:
            return None
        return [type(values[0])(round(nxt, 6)), *values]
    return None


def tune_item_item(
    train: list[Interaction],
    *,
    base,
    split: str = "random-holdout",
    seed: int = 0,
    grid: dict[str, list] | None = None,
    k: int = 10,
    progress=None,
) -> dict:
    """Pick an item-to-item model's settings by validation NDCG@k; ``train`` is all it sees.

    Returns:
        ``{"chosen": ItemItemParams, "validation": {...}, "trials": [...], "at_edge": [...]}``:
        trials best first; ``at_edge`` names settings whose best value is still the edge of the
        grid after :data:`MAX_WIDENINGS` widenings (a floor such as beta 0 does not count).
    """
    grid = grid or I2I_GRIDS[base.kind]
    how, carved = carve_validation(train, split, seed)
    search = coordinate_search(
        base,
        grid,
        lambda params: validation_ndcg_item_item(carved.train, carved.test, params, k),
        progress=progress,
        label=f"tuning {base.kind}",
    )
    return _report(search, how, carved, seed, k)
