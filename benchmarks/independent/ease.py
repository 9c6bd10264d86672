"""An independent EASE baseline that uses no embedder code: numpy only (Steck, 2019).

It re-creates the random-holdout split of ``embedder eval --split random-holdout`` with
``implicit_als.py``'s reader and splitter (no embedder code either), chooses lambda on a
validation split carved from the training part the same way (the same splitter, seed + 1000),
then fits EASE on the whole training part with the chosen lambda: ``B = I - P diag(1/diag(P))``,
``P = (XᵀX + λI)⁻¹`` by ``numpy.linalg.inv`` in float64, dense and unpruned. X is binary (an
item a user played, or rated 4-5). Scores exclude every item the user has in training, as
embedder does. ``embedder eval --methods ease --tune`` must reach at least 0.97x of this.

``--max-items N`` keeps the N items with the most training users (the same rule as embedder's
``i2i_max_items``); the inverse costs items³, so on Last.fm's 15k items one lambda takes minutes.

Usage:
    .venv/bin/python benchmarks/independent/ease.py ml100k ../shared/data/ml-100k/u.data --seeds 0,1,2
    .venv/bin/python benchmarks/independent/ease.py lastfm ../shared/data/lastfm-2k/user_artists.dat --max-items 6000
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

sys.path.insert(0, str(Path(__file__).parent))
from implicit_als import read, split  # noqa: E402  (a sibling script: still no embedder code)

LAMBDAS = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
VALIDATION_SEED_OFFSET = 1000


def fit(rows, max_items: int | None):
    """(items, B) for EASE on the positive rows: a dense items x items float64 matrix."""
    positives = [(u, i) for u, i, w in rows if w > 0]
    users_of = defaultdict(set)
    for u, i in positives:
        users_of[i].add(u)
    items = sorted(users_of)
    if max_items and len(items) > max_items:
        items = sorted(sorted(items, key=lambda i: (-len(users_of[i]), i))[:max_items])
    index = {i: n for n, i in enumerate(items)}
    users = sorted({u for u, i in positives if i in index})
    u_index = {u: n for n, u in enumerate(users)}
    cells = {(u_index[u], index[i]) for u, i in positives if i in index}
    x = csr_matrix(
        (np.ones(len(cells)), ([r for r, _ in cells], [c for _, c in cells])), shape=(len(users), len(items))
    )
    return items, index, users, u_index, x


def ease(x, lam: float) -> np.ndarray:
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def ndcg_recall(history, test, items, index, u_index, x, b, k: int = 10):
    seen = defaultdict(set)
    for u, i, _ in history:
        seen[u].add(i)
    relevant = defaultdict(set)
    for u, i, w in test:
        if w > 0:
            relevant[u].add(i)
    ndcg, recall = [], []
    for user in sorted(relevant):
        rel = relevant[user]
        if user not in u_index:
            ndcg.append(0.0)
            recall.append(0.0)
            continue
        scores = np.asarray(x[u_index[user]] @ b).ravel()
        scores[[index[i] for i in seen[user] if i in index]] = -np.inf
        top = [items[n] for n in np.argsort(-scores, kind="stable")[:k]]
        dcg = sum(1 / math.log2(r + 2) for r, item in enumerate(top) if item in rel)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
        ndcg.append(dcg / ideal)
        recall.append(len(set(top) & rel) / len(rel))
    return float(np.mean(ndcg)), float(np.mean(recall))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("lastfm", "ml100k"))
    parser.add_argument("path")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--max-items", type=int, default=None)
    args = parser.parse_args()
    rows = read(args.kind, args.path)
    per_seed = []
    for seed in (int(s) for s in args.seeds.split(",")):
        history, test = split(rows, seed)
        fit_rows, val = split(history, seed + VALIDATION_SEED_OFFSET)
        items, index, users, u_index, x = fit(fit_rows, args.max_items)
        validation = {lam: ndcg_recall(fit_rows, val, items, index, u_index, x, ease(x, lam))[0] for lam in LAMBDAS}
        chosen = max(validation, key=validation.get)
        started = time.perf_counter()
        items, index, users, u_index, x = fit(history, args.max_items)
        b = ease(x, chosen)
        seconds = time.perf_counter() - started
        ndcg, recall = ndcg_recall(history, test, items, index, u_index, x, b)
        per_seed.append(
            {
                "seed": seed,
                "items": len(items),
                "lambda": chosen,
                "lambda_at_grid_edge": chosen in (LAMBDAS[0], LAMBDAS[-1]),
                "validation_ndcg@10": {str(k): round(v, 5) for k, v in validation.items()},
                "fit_seconds": round(seconds, 2),
                "train_events": len(history),
                "test_events": len(test),
                "ndcg@10": round(ndcg, 5),
                "recall@10": round(recall, 5),
            }
        )
        print(f"seed {seed}: lambda {chosen}, NDCG@10 {ndcg:.4f}", file=sys.stderr)
    ndcgs = [r["ndcg@10"] for r in per_seed]
    json.dump(
        {
            "data": args.kind,
            "settings": vars(args),
            "per_seed": per_seed,
            "ndcg@10_mean": round(float(np.mean(ndcgs)), 5),
            "ndcg@10_std": round(float(np.std(ndcgs)), 5),
            "recall@10_mean": round(float(np.mean([r["recall@10"] for r in per_seed])), 5),
        },
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
