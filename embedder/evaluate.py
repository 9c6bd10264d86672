"""Offline evaluation: splits, Recall@K / NDCG@K / coverage, and a comparison of methods.

Every method is served the way ``embedder recommend`` serves it: a scratch embedded Qdrant store
gets the CF factors fitted on the training split (and the content vectors of items with media),
and each test user's list comes from :func:`recommend_for_user`. So the numbers measure the
queries users run, not a re-implementation of them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from embedder.errors import EmbedderError
from embedder.recommend.cf import CFParams, fit_cf
from embedder.recommend.hybrid import HybridParams
from embedder.recommend.interactions import Interaction
from embedder.recommend.itemitem import ItemItemParams, fit_item_item
from embedder.recommend.scratch import item_vectors, scratch_stores
from embedder.recommend.sparse import write_item_item
from embedder.recommend.splits import (
    SPLITS,
    Split,
    coverage,
    hr_recall_at_k,
    ndcg_at_k,
    recall_at_k,
    split_events,
    users_to_score,
)
from embedder.recommend.strategies import SPARSE_BRANCHES, get_strategy
from embedder.recommend.tune import tune_cf, tune_item_item

__all__ = [
    "KS",
    "METHODS",
    "SPLITS",
    "Split",
    "coverage",
    "evaluate",
    "evaluate_seeds",
    "hr_recall_at_k",
    "ndcg_at_k",
    "plot",
    "recall_at_k",
    "split_events",
]

KS = (10, 20, 50)
# The strategies of embedder.recommend.strategies, in report order; "als" and "popularity" (the
# names reports used before there was one registry) are accepted as aliases of cf and popular.
METHODS = ("popular", "cf", "content", "hybrid", "trained", "ease", "rp3beta", "itemknn", "words")


def evaluate(
    events: list[Interaction],
    *,
    split: str = "leave-last-out",
    methods: tuple[str, ...] = METHODS[:4],
    ks: tuple[int, ...] = KS,
    seed: int = 0,
    cf: CFParams | None = None,
    tune: bool = False,
    media=None,
    max_users: int | None = None,
    test_fraction: float = 0.2,
    progress=None,
    train_config=None,
    item_item: dict | None = None,
    hybrid: HybridParams | None = None,
    popularity_min_items: int = 1,
) -> dict:
    """Compare recommendation methods on one split of an interaction log.

    Args:
        events: the log, in time order.
        cf: the collaborative model's settings (for ``als``, ``hybrid`` and the cf branch).
        tune: first tune ``cf`` on a validation split carved from the training part
            (:func:`embedder.recommend.tune.tune_cf`); the test part is never used for it.
        media: a store with ingested media (for ``content``, ``hybrid`` and the head's content
            input); ``None`` skips content.
        train_config: :class:`~embedder.train.config.TrainConfig` for the ``trained`` method (the
            two-tower head, trained on the training split with its own validation holdout).
        max_users: evaluate a seeded sample of the test users (for big logs).
        item_item: kind -> :class:`~embedder.recommend.itemitem.ItemItemParams` for the ``ease``,
            ``rp3beta`` and ``itemknn`` methods (defaults where missing); with ``tune``, each is
            tuned on the same validation split carved from training
            (:func:`embedder.recommend.tune.tune_item_item`).
        hybrid: how ``hybrid`` fuses (:class:`~embedder.recommend.hybrid.HybridParams`). With
            ``tune``, its collaborative model is the evaluated one with the best validation score
            and its content side, fusion and weight are tuned on validation through the hybrid
            query (:func:`~embedder.recommend.hybrid_tuning.tune_hybrid_on_validation`).
        popularity_min_items: ``popular`` counts only users with this many liked items, as served.
    """
    from embedder.recommend.cf import write_cf
    from embedder.recommend.fitting import with_popularity

    cf = cf or CFParams()
    hybrid = hybrid or HybridParams()
    content = item_vectors(media, sorted({e.item for e in events})) if media is not None else {}
    data = split_events(events, split, seed=seed, test_fraction=test_fraction, items_with_content=set(content) or None)
    tuning = None
    if tune:
        # The scratch store takes vectors of any size, so the factors are tuned here too.
        tuning = tune_cf(data.train, base=cf, split=split, seed=seed, tune_factors=True)
        cf = tuning["chosen"]
        tuning = {**tuning, "chosen": cf.to_dict(), "trials": tuning["trials"][:10]}
    factors = cf.factors
    history, relevant, test_users = users_to_score(data.train, data.test, max_users, seed)
    if not test_users:
        raise EmbedderError("the split left no user with both training and test events")
    catalogue = data.candidates or {e.item for e in events}
    skipped = {}
    runnable = []
    for name in methods:
        strategy = get_strategy(name)
        if strategy.needs_content and not content:
            skipped[strategy.name] = (
                "no item in the log has a content vector (ingest media whose paths or ids match the items)"
            )
        elif strategy.name not in runnable:
            runnable.append(strategy.name)
    sparse_methods = [m for m in runnable if m in SPARSE_BRANCHES]
    if "hybrid" in runnable and hybrid.base in SPARSE_BRANCHES and hybrid.base not in sparse_methods:
        sparse_methods.append(hybrid.base)  # fitted for the hybrid even where not compared alone
    i2i_params = {kind: (item_item or {}).get(kind) or ItemItemParams(kind=kind) for kind in sparse_methods}
    i2i_tuning = {}
    if tune:
        for kind in sparse_methods:
            tuned = tune_item_item(data.train, base=i2i_params[kind], split=split, seed=seed)
            i2i_params[kind] = tuned["chosen"]
            i2i_tuning[kind] = {**tuned, "chosen": tuned["chosen"].relevant(), "trials": tuned["trials"][:10]}
    hybrid_tuning = None
    if "hybrid" in runnable and tune:
        hybrid, hybrid_tuning = _tune_hybrid(data.train, content, cf, tuning, i2i_params, i2i_tuning, split, seed)
        if hybrid.base in SPARSE_BRANCHES and hybrid.base not in sparse_methods:
            sparse_methods.append(hybrid.base)
    if "trained" in runnable and train_config is None:
        from embedder.train.config import TrainConfig

        train_config = TrainConfig()
    extra = {}
    rec_dim = train_config.model.dim if train_config is not None else 8
    with (
        tempfile.TemporaryDirectory(prefix="embedder-eval-") as tmp,
        scratch_stores(tmp, factors, rec_dim, content) as (scratch, users_store),
    ):
        started = time.perf_counter()
        model = fit_cf(data.train, cf, seed=seed)
        extra["cf"] = {"fit_seconds": round(time.perf_counter() - started, 3)}
        write_cf(with_popularity(model, data.train, popularity_min_items), scratch, users_store)
        if "trained" in runnable:
            extra["trained"] = _train_head(
                data, media if content else None, train_config, scratch, users_store, Path(tmp), cf
            )
        for kind in sparse_methods:
            fitted = with_popularity(fit_item_item(data.train, i2i_params[kind]), data.train, popularity_min_items)
            written = write_item_item(fitted, scratch)
            extra[kind] = {k: written[k] for k in ("fit_seconds", "weights", "items", "left_out_items")}
        _mark_candidates(scratch, data.candidates)
        results = {}
        for method in runnable:
            lists = []
            for user in test_users:
                lists.append(_rank(method, user, history[user], scratch, users_store, max(ks), data.candidates, hybrid))
                if progress is not None:
                    progress.advance(user, method)
            results[method] = _scores(lists, [relevant[u] for u in test_users], ks, len(catalogue))
    if "hybrid" in results and hybrid.base in results and results[hybrid.base]["ndcg@10"] > 0:
        # Whether the fusion adds: hybrid against its own collaborative model, on test.
        alone = results[hybrid.base]["ndcg@10"]
        extra["hybrid"] = {"base": hybrid.base, "vs_base_ndcg@10": round(results["hybrid"]["ndcg@10"] / alone, 4)}
    settings = {
        "popular": {"rank": "training-split interaction count", "exclude_seen": True},
        "cf": {**cf.to_dict(), "tuned": tune},
        "content": {"query": "recommend on content, 20 latest positives"},
        "words": {"query": "BM25 over the items' words with the words of the 50 latest positives"},
        "hybrid": {**hybrid.to_dict(), "tuned": tune},
        "trained": train_config.model_dump() if train_config is not None else None,
        **{kind: {**params.relevant(), "tuned": tune} for kind, params in i2i_params.items()},
    }
    return {
        "split": split,
        "seed": seed,
        "factors": factors,
        "ks": list(ks),
        "details": extra,
        "train_events": len(data.train),
        "test_events": len(data.test),
        "users_evaluated": len(test_users),
        "catalogue": len(catalogue),
        "methods": results,
        "skipped": skipped,
        "settings": {m: settings[m] for m in results},
        "tuning": tuning,
        "tuning_item_item": i2i_tuning or None,
        "tuning_hybrid": hybrid_tuning,
    }


def evaluate_seeds(events: list[Interaction], seeds: list[int], **kwargs) -> dict:
    """:func:`evaluate` once per seed (split, sampling, fitting and tuning all follow the seed).

    Returns the first seed's report with ``methods`` holding each metric's mean over the seeds,
    ``spread`` its standard deviation (population, ``ddof=0``), and ``per_seed`` the runs.
    """
    if not seeds:
        raise EmbedderError("--seeds needs at least one seed")
    runs = [evaluate(events, seed=seed, **kwargs) for seed in seeds]
    report = dict(runs[0])
    means, spread = {}, {}
    for method in runs[0]["methods"]:
        means[method], spread[method] = {}, {}
        for metric in runs[0]["methods"][method]:
            values = [r["methods"][method][metric] for r in runs]
            means[method][metric] = round(float(np.mean(values)), 5)
            spread[method][metric] = round(float(np.std(values)), 5)
    report.update(
        seeds=list(seeds),
        seed=None,
        methods=means,
        spread=spread,
        per_seed=[
            {
                "seed": r["seed"],
                "methods": r["methods"],
                "tuning": r["tuning"],
                "tuning_item_item": r["tuning_item_item"],
                "tuning_hybrid": r["tuning_hybrid"],
                "details": r["details"],
                "train_events": r["train_events"],
                "test_events": r["test_events"],
            }
            for r in runs
        ],
    )
    return report


def _rank(method, user, history, media, users, k, candidates, hybrid=None) -> list[str]:
    """The user's list from the same query ``embedder recommend --strategy METHOD`` runs."""
    from embedder.recommend.queries import recommend_for_user

    flt = {"eval_role": "candidate"} if candidates is not None else None
    result = recommend_for_user(
        user, history, media, users, limit=k, strategy=method, filter=flt, popular_fallback=False, hybrid=hybrid
    )
    return [r.item for r in result.items]


def _train_head(data: Split, media, cfg, scratch, users_store, tmp: Path, cf: CFParams) -> dict:
    """Train the two-tower head on the training split and serve its vectors from the scratch store."""
    from embedder.train.export import write_rec
    from embedder.train.fit import train_head

    cold = sorted(data.candidates) if data.candidates else None
    result, tdata, users_vecs, items_vecs, version, metrics = train_head(
        data.train, cfg, media=media, run_dir=tmp / "run", extra_items=cold, cf=cf
    )
    write_rec(users_vecs, items_vecs, tdata, scratch, users_store, version)
    return {
        k: metrics[k]
        for k in (
            "best_epoch",
            "epochs",
            "stopped_early",
            "robustness",
            "head_parameters",
            "history",
            "init",
            "cf_init",
            "refit_epochs",
            "privacy",
        )
    }


def _scores(lists, relevant, ks, catalogue_size) -> dict:
    out = {}
    for k in ks:
        out[f"recall@{k}"] = round(float(np.mean([recall_at_k(r, rel, k) for r, rel in zip(lists, relevant)])), 5)
        out[f"hr_recall@{k}"] = round(float(np.mean([hr_recall_at_k(r, rel, k) for r, rel in zip(lists, relevant)])), 5)
        out[f"ndcg@{k}"] = round(float(np.mean([ndcg_at_k(r, rel, k) for r, rel in zip(lists, relevant)])), 5)
        out[f"coverage@{k}"] = round(coverage(lists, catalogue_size, k), 5)
    return out


def _tune_hybrid(train, vectors, cf, cf_tuning, i2i_params, i2i_tuning, split, seed) -> tuple:
    """The hybrid's collaborative model (the tuned one with the best validation NDCG@10) and its
    fusion, tuned on validation; ``(HybridParams, report)``."""
    from embedder.recommend.hybrid_tuning import tune_hybrid_on_validation

    scores = {"cf": cf_tuning["trials"][0]["val_ndcg@10"]} if cf_tuning else {}
    scores |= {kind: t["validation"]["best_ndcg@10"] for kind, t in i2i_tuning.items()}
    base = max(scores, key=lambda name: (scores[name], name == "cf"))
    params = cf if base == "cf" else i2i_params[base]
    tuned = tune_hybrid_on_validation(train, vectors, base, params, split=split, seed=seed)
    report = {
        "base": base,
        "base_validation_ndcg@10": {k: round(v, 5) for k, v in scores.items()},
        "chosen": tuned["chosen"].to_dict(),
        "adds_on_validation": tuned["adds"],
        "base_alone_val_ndcg@10": tuned["base_alone"],
        "validation_users": tuned["validation_users"],
        "trials": tuned["trials"],
    }
    return tuned["chosen"], report


def _mark_candidates(store, candidates) -> None:
    if candidates is None:
        return
    from embedder.ids import item_point_id

    # Cold items have no interactions in training, so they may have no point yet: give them one.
    store.set_payload(
        [item_point_id(i) for i in sorted(candidates) if store.retrieve([item_point_id(i)])], {"eval_role": "candidate"}
    )


def plot(result: dict, path: str | Path, title: str = "") -> None:
    """A grouped bar chart of NDCG@K and Recall@K per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(result["methods"])
    ks = result["ks"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    width = 0.8 / max(1, len(methods))
    for ax, metric in zip(axes, ("ndcg", "recall")):
        for i, m in enumerate(methods):
            values = [result["methods"][m][f"{metric}@{k}"] for k in ks]
            ax.bar(np.arange(len(ks)) + i * width, values, width, label=m)
        ax.set_xticks(np.arange(len(ks)) + width * (len(methods) - 1) / 2, [f"@{k}" for k in ks])
        ax.set_title(metric.upper() if metric == "ndcg" else "Recall")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or f"split: {result['split']}, users: {result['users_evaluated']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
