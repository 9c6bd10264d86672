"""Shilling attacks on embedder's recommenders: can fake accounts push an item into genuine users' top 10?

For each data set and seed: embedder's random-holdout split of the real log; one cold, one mid
and one popular target item (seeded draw from the training popularity); then, per target, attack
and attack size, fake profiles are added to the training log, every strategy is fitted on it with
embedder's own fitting code, and genuine users are ranked exactly as the served queries rank them
(the item-to-item sparse queries, ALS's dot product and popularity, each checked equal to the
served order in tests/recommend/test_item_item.py and test_cf.py), seen items excluded.

Reported per strategy, attack and size (mean over targets and seeds):
- the targets' hit ratio at 10 among genuine users who have not interacted with them, before and
  after the attack (``hr_before``, ``hr_after``);
- genuine users' NDCG@10 on their held-out items after the attack (``ndcg``; ``ndcg_clean``).

Attacks (each fake profile: the target at the highest weight, plus filler items):
- random: filler drawn uniformly, weights from the log's weight distribution;
- average: filler drawn uniformly, each at its item's mean weight;
- bandwagon: the most popular items as filler, at high weight;
- segment: the items the target's own audience consumes most (its segment), at high weight;
- pair (ours): the target with one very popular item, nothing else. It aims at how item-to-item
  models score: a short profile puts all its weight on one co-occurrence, so B[popular, target]
  grows for every genuine user who has the popular item.
- trio (ours, adapted): the pair attack with a second very popular item, so that each account
  has the three liked items ``popularity_min_items = 3`` asks before it counts in popularity.

Usage (about 15 minutes per data set and seed on the 2-core machine):
    .venv/bin/python benchmarks/robustness/run.py --ml100k ../shared/data/ml-100k \\
        --lastfm ../shared/data/lastfm-2k --seeds 0 --out benchmarks/robustness/results.json
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "independent"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from implicit_als import read  # noqa: E402  (the file readers every benchmark shares)
from reporting import run_record, save  # noqa: E402

from embedder.recommend.cf import CFParams, fit_cf  # noqa: E402
from embedder.recommend.interactions import Interaction  # noqa: E402
from embedder.recommend.itemitem import KINDS, ItemItemParams, fit_item_item, weighted_matrix  # noqa: E402
from embedder.recommend.splits import ndcg_at_k, split_events  # noqa: E402
from embedder.recommend.suspicious import without_suspicious  # noqa: E402

ATTACKS = ("random", "average", "bandwagon", "segment", "pair", "trio")
# The head without and with adversarial training (APR), from the ALS start or from scratch (slow:
# not in the default run). From the ALS start, with no content, no epoch may beat the start on
# validation, and the start (epoch 0) is what is served: then APR never ran on the served model.
TRAINED = ("trained", "trained-apr", "trained-scratch", "trained-scratch-apr")
STRATEGIES = ("popular", "cf", *KINDS)
FILES = {"lastfm": "user_artists.dat", "ml100k": "u.data"}
FILLER = 30  # filler items per fake profile (the pair attack uses one, the trio two)


def load(name: str, folder: Path) -> list[Interaction]:
    rows = read(name, str(folder / FILES[name]))
    return [Interaction(u, i, w, seq=n) for n, (u, i, w) in enumerate(rows)]


def draw_targets(train: list[Interaction], rng: random.Random) -> dict[str, str]:
    """One item per popularity band of the training positives: cold (2-3 users), mid (around the
    80th percentile of items), popular (top 1%, below the top 20)."""
    users = defaultdict(set)
    for e in train:
        if e.weight > 0:
            users[e.item].add(e.user)
    ranked = sorted(users, key=lambda i: (-len(users[i]), i))
    cold = [i for i in ranked if 2 <= len(users[i]) <= 3]
    mid_at = int(len(ranked) * 0.2)
    mid = ranked[max(20, mid_at - 20) : mid_at + 20]
    popular = ranked[20 : max(21, int(len(ranked) * 0.01) + 20)]
    return {"cold": rng.choice(cold), "mid": rng.choice(mid), "popular": rng.choice(popular)}


def fake_profiles(attack: str, target: str, count: int, train: list[Interaction], rng: random.Random):
    """``count`` fake users' events promoting ``target``."""
    weights = [e.weight for e in train if e.weight > 0]
    high = float(np.percentile(weights, 95))
    users = defaultdict(set)
    sums = defaultdict(list)
    for e in train:
        if e.weight > 0:
            users[e.item].add(e.user)
            sums[e.item].append(e.weight)
    items = sorted(users)
    popular = sorted(items, key=lambda i: (-len(users[i]), i))
    audience = users[target]
    segment_counts = defaultdict(int)
    for e in train:
        if e.user in audience and e.weight > 0 and e.item != target:
            segment_counts[e.item] += 1
    segment = sorted(segment_counts, key=lambda i: (-segment_counts[i], i))[:FILLER] or popular[:FILLER]
    events = []
    for n in range(count):
        user = f"fake-{attack}-{n}"
        if attack == "pair":
            filler = [(popular[n % 10], high)]
        elif attack == "trio":
            filler = [(popular[n % 10], high), (popular[(n + 1) % 10], high)]
        elif attack == "bandwagon":
            filler = [(i, high) for i in popular[:FILLER]]
        elif attack == "segment":
            filler = [(i, high) for i in segment]
        else:
            picks = rng.sample(items, FILLER)
            if attack == "random":
                filler = [(i, rng.choice(weights)) for i in picks]
            else:
                filler = [(i, float(np.mean(sums[i]))) for i in picks]
        for item, weight in [(target, high), *((i, w) for i, w in filler if i != target)]:
            events.append(Interaction(user, item, float(weight), seq=10**9 + len(events)))
    return events


def scores_by_strategy(strategy: str, train: list[Interaction], genuine: list[str], params: dict, history=None):
    """(items, users x items scores) for the genuine users, as the served query orders them.

    ``history``: the events users' item-to-item queries are built from, when the model was fitted
    on fewer (quarantine): a served query reads the whole log at request time.
    """
    if strategy == "popular":
        counts = defaultdict(set)
        for e in train:
            if e.weight > 0:
                counts[e.item].add(e.user)
        items = sorted(counts)
        row = np.asarray([len(counts[i]) for i in items], np.float64)
        return items, np.tile(row, (len(genuine), 1))
    if strategy == "cf":
        model = fit_cf(train, params["cf"], seed=0)
        index = {u: n for n, u in enumerate(model.users)}
        scores = np.zeros((len(genuine), len(model.items)))
        rows = [n for n, u in enumerate(genuine) if u in index]
        scores[rows] = model.user_factors[[index[genuine[n]] for n in rows]] @ model.item_factors.T
        return model.items, scores
    if strategy in TRAINED:
        return trained_scores(train, genuine, params["cf"], strategy.endswith("-apr"), "scratch" in strategy)
    model = fit_item_item(train, params[strategy])
    x, users, items = weighted_matrix(history or train, model.params.weighting, model.items)
    index = {u: n for n, u in enumerate(users)}
    rows = [n for n, u in enumerate(genuine) if u in index]
    scores = np.zeros((len(genuine), len(items)))
    scores[rows] = (x[[index[genuine[n]] for n in rows]] @ model.weights).toarray()
    return items, scores


def trained_scores(train: list[Interaction], genuine: list[str], cf: CFParams, adversarial: bool, scratch: bool):
    """The two-tower head as ``embedder train`` fits it with no content (so it starts from ALS with
    ``cf``'s settings, at the config's 64 factors, or with ``scratch`` from random towers):
    ``pipelines/configs/train.toml``, with APR (``train-apr.toml``'s epsilon and weight) or
    without; scores are user vector . item vector, as the served ``rec`` query ranks them."""
    import tempfile

    from embedder.train.config import load_train_config
    from embedder.train.fit import train_head

    name = "train-apr.toml" if adversarial else "train.toml"
    cfg = load_train_config(ROOT / "pipelines" / "configs" / name, **{"model.init": "random" if scratch else None})
    with tempfile.TemporaryDirectory(prefix="embedder-attack-head-") as tmp:
        _, data, users_vecs, items_vecs, _, _ = train_head(train, cfg, media=None, run_dir=Path(tmp), cf=cf)
    index = {u: n for n, u in enumerate(data.users)}
    scores = np.zeros((len(genuine), len(data.items)))
    rows = [n for n, u in enumerate(genuine) if u in index]
    scores[rows] = np.asarray(users_vecs)[[index[genuine[n]] for n in rows]] @ np.asarray(items_vecs).T
    return list(data.items), scores


def top10(items, scores, genuine, seen):
    """Each genuine user's top 10 (seen items excluded), as item keys."""
    index = {i: n for n, i in enumerate(items)}
    out = {}
    for row, user in enumerate(genuine):
        s = scores[row].copy()
        s[[index[i] for i in seen[user] if i in index]] = -np.inf
        top = np.argpartition(-s, min(10, len(s) - 1))[:10]
        out[user] = [items[i] for i in top[np.argsort(-s[top], kind="stable")] if np.isfinite(s[i])]
    return out


def measure(lists, target, seen, relevant) -> tuple[float, float]:
    """(hit ratio of ``target`` among users who have not seen it, mean NDCG@10 on held-out)."""
    eligible = [u for u in lists if target not in seen[u]]
    hr = float(np.mean([target in lists[u] for u in eligible])) if eligible else 0.0
    ndcg = float(np.mean([ndcg_at_k(lists[u], relevant[u], 10) for u in lists if relevant[u]]))
    return hr, ndcg


def tuned_params(name: str) -> dict:
    """Settings near what 'eval --tune' chose on these data sets (benchmarks/baselines)."""
    cf = CFParams(weighting="bm25", alpha=1.0, regularization=30.0)
    return {
        "cf": cf,
        "ease": ItemItemParams("ease", l2=400.0, neighbours=400, max_items=6000 if name == "lastfm" else 0),
        "rp3beta": ItemItemParams("rp3beta", alpha=0.5, beta=0.4, neighbours=200),
        "itemknn": ItemItemParams("itemknn", neighbours=200, shrink=10.0),
    }


def run(name: str, folder: Path, seeds: list[int], sizes: list[float], strategies, attacks) -> dict:
    events = load(name, folder)
    params = tuned_params(name)
    rows = []
    for seed in seeds:
        rng = random.Random(seed)
        data = split_events(events, "random-holdout", seed=seed)
        genuine = sorted({e.user for e in data.train})
        seen, relevant = defaultdict(set), defaultdict(set)
        for e in data.train:
            seen[e.user].add(e.item)
        for e in data.test:
            if e.weight > 0:
                relevant[e.user].add(e.item)
        targets = draw_targets(data.train, rng)
        clean, clean_defended = {}, {}
        quarantined_clean, flagged_clean = without_suspicious(data.train)
        for strategy in strategies:
            items, scores = scores_by_strategy(strategy, data.train, genuine, params)
            clean[strategy] = top10(items, scores, genuine, seen)
            items, scores = scores_by_strategy(strategy, quarantined_clean, genuine, params, data.train)
            clean_defended[strategy] = top10(items, scores, genuine, seen)
        for band, target in targets.items():
            for attack in attacks:
                for size in sizes:
                    count = max(1, round(size * len(genuine)))
                    fakes = fake_profiles(attack, target, count, data.train, rng)
                    attacked = data.train + fakes
                    defended, flagged = without_suspicious(attacked)
                    fake_users = {e.user for e in fakes}
                    caught = sum(s.user in fake_users for s in flagged)
                    for strategy in strategies:
                        started = time.perf_counter()
                        items, scores = scores_by_strategy(strategy, attacked, genuine, params)
                        lists = top10(items, scores, genuine, seen)
                        hr_before, ndcg_clean = measure(clean[strategy], target, seen, relevant)
                        hr_after, ndcg = measure(lists, target, seen, relevant)
                        items, scores = scores_by_strategy(strategy, defended, genuine, params, attacked)
                        hr_defended, ndcg_defended = measure(
                            top10(items, scores, genuine, seen), target, seen, relevant
                        )
                        hr_defended_clean, ndcg_defended_clean = measure(
                            clean_defended[strategy], target, seen, relevant
                        )
                        rows.append(
                            {
                                "seed": seed,
                                "band": band,
                                "target": target,
                                "attack": attack,
                                "size": size,
                                "fake_users": count,
                                "strategy": strategy,
                                "hr_before": round(hr_before, 5),
                                "hr_after": round(hr_after, 5),
                                "ndcg_clean": round(ndcg_clean, 5),
                                "ndcg": round(ndcg, 5),
                                "hr_defended": round(hr_defended, 5),
                                "ndcg_defended": round(ndcg_defended, 5),
                                "hr_defended_clean": round(hr_defended_clean, 5),
                                "ndcg_defended_clean": round(ndcg_defended_clean, 5),
                                "flagged": len(flagged),
                                "flagged_fake": caught,
                                "precision": round(caught / len(flagged), 4) if flagged else None,
                                "recall": round(caught / len(fake_users), 4),
                                "genuine_flagged_clean": len(flagged_clean),
                                "seconds": round(time.perf_counter() - started, 2),
                            }
                        )
                    print(f"[{name} seed {seed}] {band} {attack} {size}: done", file=sys.stderr)
    return {"data": name, "users": len({e.user for e in events}), "rows": rows}


def summary(rows: list[dict]) -> list[dict]:
    """Mean over seeds per (strategy, attack, size, band)."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["strategy"], r["attack"], r["size"], r["band"])].append(r)
    out = []
    for (strategy, attack, size, band), rs in sorted(groups.items()):
        out.append(
            {
                "strategy": strategy,
                "attack": attack,
                "size": size,
                "band": band,
                **{
                    key: round(float(np.mean([r[key] for r in rs if r[key] is not None] or [0.0])), 4)
                    for key in (
                        "hr_before",
                        "hr_after",
                        "ndcg_clean",
                        "ndcg",
                        "hr_defended",
                        "ndcg_defended",
                        "hr_defended_clean",
                        "ndcg_defended_clean",
                        "precision",
                        "recall",
                    )
                },
            }
        )
    return out


def markdown(results: dict) -> str:
    lines = []
    for data in results["datasets"]:
        lines += [
            f"### {data['data']}: targets' hit ratio @10 among genuine users, before -> after (-> with quarantine)",
            "",
        ]
        table = data["summary"]
        sizes = sorted({r["size"] for r in table})
        header = "| strategy | attack | band | " + " | ".join(f"{s:.1%}" for s in sizes) + " | NDCG@10 clean -> worst |"
        lines += [header, "|" + " --- |" * (4 + len(sizes))]
        keyed = {(r["strategy"], r["attack"], r["band"], r["size"]): r for r in table}
        for strategy, attack, band in sorted({(r["strategy"], r["attack"], r["band"]) for r in table}):
            cells = [keyed[(strategy, attack, band, s)] for s in sizes]
            worst = min(c["ndcg"] for c in cells)
            lines.append(
                f"| {strategy} | {attack} | {band} | "
                + " | ".join(
                    f"{c['hr_before']:.3f} -> {c['hr_after']:.3f} -> {c['hr_defended']:.3f} "
                    f"(P {c['precision']:.2f} R {c['recall']:.2f})"
                    for c in cells
                )
                + f" | {cells[0]['ndcg_clean']:.4f} -> {worst:.4f}; quarantine on clean "
                f"{cells[0]['ndcg_defended_clean']:.4f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lastfm", type=Path)
    parser.add_argument("--ml100k", type=Path)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--sizes", default="0.005,0.01,0.03,0.05", help="fake users as a share of genuine users")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [float(s) for s in args.sizes.split(",")]
    strategies = tuple(args.strategies.split(","))
    attacks = tuple(args.attacks.split(","))
    started = time.perf_counter()
    datasets = []
    for name, folder in (("ml100k", args.ml100k), ("lastfm", args.lastfm)):
        if folder:
            result = run(name, folder, seeds, sizes, strategies, attacks)
            result["summary"] = summary(result["rows"])
            datasets.append(result)
    save(run_record(started, datasets=datasets), args.out, markdown, indent=1)


if __name__ == "__main__":
    main()
