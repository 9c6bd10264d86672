"""Recommendation quality you can trust: confidence weighting, tuning on validation only, spread over seeds."""

import random

import numpy as np
import pytest

from embedder.errors import EmbedderError
from embedder.evaluate import evaluate, evaluate_seeds
from embedder.recommend.cf import CFParams, confidence, fit_cf, interaction_matrix
from embedder.recommend.interactions import ColumnMap, Interaction, InteractionLog
from embedder.recommend.splits import hr_recall_at_k, recall_at_k, split_events
from embedder.recommend.tune import save_cf_settings, tune_cf
from embedder.settings import load_settings


def community_log(binary: bool, seed: int = 0, users_per_group: int = 12, items_per_group: int = 12):
    """Two communities; each user plays 9 of their community's 12 items; counts are heavy-tailed
    (1 to ~1000 plays) unless ``binary``. Returns the events and each user's 3 unseen community items."""
    rng = random.Random(seed)
    events, held = [], {}
    for g in range(2):
        items = [f"g{g}-i{i}" for i in range(items_per_group)]
        for u in range(users_per_group):
            user = f"g{g}-u{u}"
            missing = set(rng.sample(items, 3))
            held[user] = missing
            for it in items:
                if it not in missing:
                    plays = 1.0 if binary else float(int(rng.paretovariate(0.8)) % 1000 + 1)
                    events.append(Interaction(user, it, plays))
    return events, held


def hit_rate(model, events, held) -> float:
    """Share of each user's 3 unseen community items found in their top 3 (training items excluded)."""
    u_index = {u: n for n, u in enumerate(model.users)}
    seen = {}
    for e in events:
        seen.setdefault(e.user, set()).add(model.items.index(e.item))
    hits = []
    for user, missing in held.items():
        scores = model.user_factors[u_index[user]] @ model.item_factors.T
        scores[list(seen[user])] = -np.inf
        top = {model.items[i] for i in np.argsort(-scores)[:3]}
        hits.append(len(top & missing) / 3)
    return float(np.mean(hits))


def test_confidence_values_per_weighting():
    events = [
        Interaction("u", "a", 1.0),
        Interaction("u", "b", 10.0),
        Interaction("v", "a", 1000.0),
        Interaction("v", "c", 1.0),
    ]
    matrix, users, items = interaction_matrix(events)
    log1p = confidence(matrix, CFParams(weighting="log1p", alpha=2.0)).toarray()
    np.testing.assert_allclose(log1p[0, :2], 1 + 2 * np.log1p([1.0, 10.0]), rtol=1e-6)
    assert log1p[1, 0] == pytest.approx(1 + 2 * np.log1p(1000.0), rel=1e-6)  # tamed: 14.8, not 1000
    raw = confidence(matrix, CFParams(weighting="raw", alpha=0.5)).toarray()
    assert raw[1, 0] == 500.0 and raw[0, 1] == 5.0
    binary = confidence(matrix, CFParams(weighting="binary", alpha=3.0))
    assert set(binary.data.tolist()) == {3.0}
    bm25 = confidence(matrix, CFParams(weighting="bm25", alpha=1.0, bm25_k1=1.2))
    assert bm25.data.max() < 5  # K1 = 1.2 saturates counts; the old K1 = 100 gave confidences in the hundreds
    with pytest.raises(EmbedderError, match="--weighting must be one of"):
        CFParams(weighting="sqrt")


@pytest.mark.parametrize("binary", [False, True], ids=["play-counts", "binary"])
@pytest.mark.parametrize("weighting", ["log1p", "bm25", "binary"])
def test_default_weightings_learn_communities_on_counts_and_on_binary_logs(weighting, binary):
    events, held = community_log(binary)
    model = fit_cf(events, CFParams(factors=4, weighting=weighting, iterations=20), seed=0)
    assert hit_rate(model, events, held) >= 0.9


def test_neutral_rating_is_counted_not_rejected(tmp_path):
    f = tmp_path / "ratings.csv"
    f.write_text("user,item,stars\nu1,a,5\nu1,b,3\nu1,c,1\nu2,a,3\nu2,b,x\n")
    with InteractionLog(tmp_path / "log.sqlite") as log:
        report = log.import_file(f, ColumnMap(rating="stars", rating_threshold=3.0))
        assert (report.rows, report.added, report.neutral, report.bad) == (5, 4, 2, 1)
        assert report.bad_rows == [{"line": 6, "reason": "not a number: 'x' (column 'stars')"}]
        assert sorted((e.user, e.item, e.weight) for e in log.all()) == [
            ("u1", "a", 2.0),
            ("u1", "b", 0.0),
            ("u1", "c", -2.0),
            ("u2", "a", 0.0),
        ]
        assert report.to_dict()["neutral"] == 2
    # Neutral events are seen but carry no preference: CF ignores them.
    matrix, users, items = interaction_matrix([Interaction("u1", "a", 2.0), Interaction("u1", "b", 0.0)])
    assert (users, items, matrix.nnz) == (["u1"], ["a"], 1)


def test_recall_variants():
    relevant = {f"r{i}" for i in range(20)}
    ranked = ["r0", "x", "r1", "r2"] + [f"y{i}" for i in range(6)]
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(3 / 20)
    assert hr_recall_at_k(ranked, relevant, 10) == pytest.approx(3 / 10)
    assert hr_recall_at_k(ranked, {"r0", "r1"}, 10) == recall_at_k(ranked, {"r0", "r1"}, 10) == 1.0


def test_the_tuner_never_reads_the_test_split():
    events, _ = community_log(binary=False, seed=3)
    split = split_events(events, "random-holdout", seed=5)
    test_positions = {id(e) for e in split.test}
    # The same log with every test event pointing at garbage items: the split draws the same
    # positions (it depends on per-user counts and order only), so only the test part differs.
    corrupted = [
        Interaction(e.user, f"garbage-{n}", e.weight) if id(e) in test_positions else e for n, e in enumerate(events)
    ]
    assert split_events(corrupted, "random-holdout", seed=5).train == split.train
    base = CFParams(factors=4, iterations=10)
    direct = tune_cf(split.train, base=base, seed=5, tune_factors=True)  # as evaluate tunes on a scratch store
    assert direct["validation"]["train_events"] + direct["validation"]["validation_events"] == len(split.train)
    a = evaluate(events, split="random-holdout", methods=("als",), seed=5, cf=base, tune=True, ks=(10,))
    b = evaluate(corrupted, split="random-holdout", methods=("als",), seed=5, cf=base, tune=True, ks=(10,))
    assert a["tuning"]["trials"] == b["tuning"]["trials"] != []
    assert a["tuning"]["chosen"] == b["tuning"]["chosen"] == direct["chosen"].to_dict()
    assert a["settings"]["cf"] == {**direct["chosen"].to_dict(), "tuned": True}
    assert a["methods"]["cf"]["ndcg@10"] > b["methods"]["cf"]["ndcg@10"] == 0.0  # the test part was garbage


def test_seed_spread_is_the_mean_and_std_of_the_runs():
    events, _ = community_log(binary=False, seed=1)
    report = evaluate_seeds(
        events, [0, 1, 2], split="random-holdout", methods=("popularity", "als"), cf=CFParams(factors=4), ks=(5,)
    )
    assert report["seeds"] == [0, 1, 2] and len(report["per_seed"]) == 3
    for method in ("popular", "cf"):
        for metric in ("ndcg@5", "recall@5", "hr_recall@5"):
            values = [run["methods"][method][metric] for run in report["per_seed"]]
            assert report["methods"][method][metric] == pytest.approx(np.mean(values), abs=1e-5)
            assert report["spread"][method][metric] == pytest.approx(np.std(values), abs=1e-5)
    assert any(v > 0 for v in report["spread"]["cf"].values())  # different seeds, different splits
    assert report["settings"]["cf"]["weighting"] == "log1p" and report["settings"]["popular"]["exclude_seen"]


def test_tuned_settings_are_saved_for_the_next_training(tmp_path):
    config = tmp_path / "embedder.toml"
    config.write_text('# my settings\ncollection = "shows"\ncf_alpha = 9.0\n')
    lines = save_cf_settings(CFParams(weighting="bm25", alpha=0.5, regularization=0.01), config)
    assert 'cf_weighting = "bm25"' in lines
    text = config.read_text()
    assert text.startswith('# my settings\ncollection = "shows"\ncf_alpha = 0.5\n') and text.count("cf_alpha") == 1
    settings = load_settings(config)
    assert CFParams.from_settings(settings) == CFParams(weighting="bm25", alpha=0.5, regularization=0.01)
    assert settings.collection == "shows"
