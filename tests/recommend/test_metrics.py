import math

import pytest

from embedder.recommend.interactions import Interaction
from embedder.recommend.splits import coverage, ndcg_at_k, recall_at_k, split_events


def test_recall_and_ndcg_against_hand_computed_values():
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"b", "d", "z"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, {"b", "d", "z"}, 4) == pytest.approx(2 / 3)
    # hits at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); ideal for 3 relevant in top 4 = 1 + 1/log2(3) + 1/2
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5)
    assert ndcg_at_k(ranked, {"b", "d", "z"}, 4) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], {"x"}, 10) == 1.0
    assert ndcg_at_k(["y", "x"], {"x"}, 1) == 0.0
    assert recall_at_k([], set(), 10) == 0.0


def test_coverage():
    assert coverage([["a", "b"], ["b", "c"]], 10, 1) == pytest.approx(0.2)
    assert coverage([["a", "b"], ["b", "c"]], 10, 2) == pytest.approx(0.3)


def events():
    out = []
    for u in range(4):
        for i in range(5):
            out.append(Interaction(f"u{u}", f"i{i}", 1.0, ts=float(u * 10 + i)))
    return sorted(out, key=lambda e: e.ts)


def test_splits_are_deterministic_and_shaped():
    loo = split_events(events(), "leave-last-out")
    assert sorted((e.user, e.item) for e in loo.test) == [(f"u{u}", "i4") for u in range(4)]
    assert len(loo.train) == 16
    t = split_events(events(), "time", test_fraction=0.25)
    assert [e.ts for e in t.test] == [30.0, 31.0, 32.0, 33.0, 34.0]
    a = split_events(events(), "random-holdout", seed=3)
    b = split_events(events(), "random-holdout", seed=3)
    assert a.test == b.test and len(a.test) == 4  # one of five per user
    cold = split_events(events(), "cold-items", seed=1, test_fraction=0.4)
    assert len(cold.candidates) == 2 and all(e.item in cold.candidates for e in cold.test)
    assert not any(e.item in cold.candidates for e in cold.train)
