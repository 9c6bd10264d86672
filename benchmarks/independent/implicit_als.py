"""An independent ALS baseline that uses no embedder code: plain ``implicit`` + numpy.

It re-creates the random-holdout split of ``embedder eval --split random-holdout`` (each user's
positive rows in log order; a seeded ``random.Random(seed)`` samples round(20%) of them, at
least 1 and leaving at least 1, users visited in sorted order), fits implicit's ALS on the
training part's positive rows with a plain log1p confidence, and scores NDCG@10 / Recall@10
with every item the user has in the training part excluded (rated low or neutral included), as
embedder does. ``embedder eval`` must reach at least 0.95x of this on the same split.

Usage:
    .venv/bin/python benchmarks/independent/implicit_als.py lastfm ../shared/data/lastfm-2k/user_artists.dat
    .venv/bin/python benchmarks/independent/implicit_als.py ml100k ../shared/data/ml-100k/u.data
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import defaultdict

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits


def read(kind: str, path: str) -> list[tuple[str, str, float]]:
    """(user, item, weight) rows in log order: play counts; or ratings minus 3 (neutral 0, negative
    below), ordered by their timestamp as embedder imports them."""
    rows, stamps = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = [p.strip() for p in line.strip().split("\t")]
            if len(parts) < 3 or not parts[2].replace(".", "", 1).isdigit():
                continue
            rows.append((parts[0], parts[1], float(parts[2]) if kind == "lastfm" else float(parts[2]) - 3.0))
            stamps.append(float(parts[3]) if kind == "ml100k" else 0.0)
    order = sorted(range(len(rows)), key=lambda n: (stamps[n], n))
    return [rows[n] for n in order]


def split(rows, seed: int, fraction: float = 0.2):
    """Hold out round(20%) of each user's positive rows; every other row is training history."""
    by_user = defaultdict(list)
    for n, (user, _, weight) in enumerate(rows):
        if weight > 0:
            by_user[user].append(n)
    rng = random.Random(seed)
    held = set()
    for user in sorted(by_user):
        idx = by_user[user]
        if len(idx) >= 2:
            held.update(rng.sample(idx, max(1, min(len(idx) - 1, round(len(idx) * fraction)))))
    return [r for n, r in enumerate(rows) if n not in held], [rows[n] for n in sorted(held)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("lastfm", "ml100k"))
    parser.add_argument("path")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--regularization", type=float, default=0.05)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()
    rows = read(args.kind, args.path)
    per_seed = []
    for seed in (int(s) for s in args.seeds.split(",")):
        history, test = split(rows, seed)
        train = [r for r in history if r[2] > 0]  # ALS learns from positives; all history is "seen"
        users = sorted({u for u, _, _ in train})
        items = sorted({i for _, i, _ in train})
        seen = defaultdict(set)
        for u, i, _ in history:
            seen[u].add(i)
        u_ix = {u: n for n, u in enumerate(users)}
        i_ix = {i: n for n, i in enumerate(items)}
        counts = csr_matrix(
            (
                np.array([w for _, _, w in train], np.float32),
                ([u_ix[u] for u, _, _ in train], [i_ix[i] for _, i, _ in train]),
            ),
            shape=(len(users), len(items)),
        )
        counts.sum_duplicates()
        confidence = counts.copy()
        confidence.data = args.alpha * np.log1p(confidence.data)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=args.factors,
                regularization=args.regularization,
                iterations=args.iterations,
                random_state=seed,
                num_threads=1,
            )
            model.fit(confidence, show_progress=False)
        relevant = defaultdict(set)
        for u, i, _ in test:
            relevant[u].add(i)  # items unseen in training count as misses: no model can rank them
        ndcg, recall = [], []
        scores = np.asarray(model.user_factors) @ np.asarray(model.item_factors).T
        for user in sorted(relevant):
            if user not in u_ix:
                continue
            s = scores[u_ix[user]].copy()
            s[[i_ix[i] for i in seen[user] if i in i_ix]] = -np.inf
            top = [items[n] for n in np.argsort(-s, kind="stable")[:10]]
            rel = relevant[user]
            dcg = sum(1 / math.log2(r + 2) for r, item in enumerate(top) if item in rel)
            ideal = sum(1 / math.log2(r + 2) for r in range(min(len(rel), 10)))
            ndcg.append(dcg / ideal)
            recall.append(len(set(top) & rel) / len(rel))
        per_seed.append(
            {
                "seed": seed,
                "users": len(ndcg),
                "train_events": len(history),
                "test_events": len(test),
                "ndcg@10": round(float(np.mean(ndcg)), 5),
                "recall@10": round(float(np.mean(recall)), 5),
            }
        )
    ndcgs = [r["ndcg@10"] for r in per_seed]
    json.dump(
        {
            "data": args.kind,
            "settings": vars(args),
            "per_seed": per_seed,
            "ndcg@10_mean": round(float(np.mean(ndcgs)), 5),
            "ndcg@10_std": round(float(np.std(ndcgs)), 5),
        },
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
