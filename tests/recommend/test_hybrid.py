"""The hybrid strategy: a collaborative model and a content side (dense content or the items'
words) fused in one Qdrant query, weighted RRF or DBSF, tuned on validation; and the words
strategy on its own (BM25 over the items' words with the words of the user's positives)."""

from __future__ import annotations

import random

import pytest

from embedder import Library
from embedder.catalogue import import_catalogue
from embedder.errors import EmbedderError
from embedder.evaluate import evaluate
from embedder.ids import item_point_id
from embedder.recommend.cf import CFParams
from embedder.recommend.fitting import fit_and_store
from embedder.recommend.hybrid import RRF_WEIGHTS, SMALL_RRF_K, HybridParams, tune_hybrid
from embedder.recommend.interactions import Interaction
from embedder.recommend.queries import recommend_for_user
from embedder.settings import load_settings

GENRES = ("jazz saxophone", "metal guitar", "folk fiddle")
ITEMS = 60


def _genre(item: str) -> int:
    return int(item[1:]) % len(GENRES)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A catalogue of 60 records in three genres (their words), and 45 users who each like
    records of one genre (plus one of another): taste that both the log and the words show."""
    root = tmp_path_factory.mktemp("hybrid")
    rows = ["id,title,genres"] + [f"i{n:02d},Record number {n},{GENRES[n % 3]}" for n in range(ITEMS)]
    (root / "records.csv").write_text("\n".join(rows) + "\n")
    settings = load_settings(store=str(root / "store"), models="tiny", device="cpu")
    rng = random.Random(0)
    events = []
    for u in range(45):
        own = [f"i{n:02d}" for n in range(ITEMS) if n % 3 == u % 3]
        other = [f"i{n:02d}" for n in range(ITEMS) if n % 3 != u % 3]
        events += [Interaction(f"u{u}", item, 1.0) for item in rng.sample(own, 7) + rng.sample(other, 1)]
    lib = Library.open(settings)
    import_catalogue(root / "records.csv", settings, lib.media, lambda: lib.encoders)
    lib.add_events(events)
    fit_and_store("cf", CFParams(factors=64, iterations=10), events, lib.media, lib.users)
    yield lib, events
    lib.close()


def _history(events, user):
    return [e for e in events if e.user == user]


def test_the_words_strategy_recommends_what_shares_the_positives_words(shop):
    lib, events = shop
    result = lib.recommend("u0", strategy="words", limit=5)
    seen = {e.item for e in _history(events, "u0")}
    assert result.used == ["words"] and len(result.items) == 5
    assert all(_genre(r.item) == 0 and r.item not in seen for r in result.items)  # jazz saxophone, unseen


def test_hybrid_weight_zero_is_its_collaborative_model_and_each_fusion_runs(shop):
    lib, events = shop
    history = _history(events, "u4")
    users = lib.users

    def ranked(**kwargs):
        params = HybridParams(**kwargs)
        result = recommend_for_user("u4", history, lib.media, users, limit=8, strategy="hybrid", hybrid=params)
        return result

    alone = ranked(content_weight=0.0)
    cf = recommend_for_user("u4", history, lib.media, users, limit=8, strategy="cf")
    assert alone.used == ["cf"] and [r.id for r in alone.items] == [r.id for r in cf.items]
    for kwargs in (
        {"content": "words", "fusion": "rrf", "content_weight": 0.5},
        {"content": "words", "fusion": "dbsf"},
    ):
        fused = ranked(**kwargs)
        assert fused.used == ["cf", "words"] and len(fused.items) == 8
        assert all(set(r.branches) <= {"cf", "words"} and r.branches for r in fused.items)
    # The weights reach the engine: at a small k, a light content side leaves the collaborative
    # order as it is, and a heavy one pulls in what shares u4's words (metal guitar).
    light = ranked(content="words", content_weight=0.1, rrf_k=2)
    assert [r.id for r in light.items[:3]] == [r.id for r in cf.items[:3]]
    assert len({r.id for r in light.items} & {r.id for r in cf.items}) >= 6
    heavy = ranked(content="words", content_weight=10.0, rrf_k=2)
    metal = [sum(_genre(r.item) == 1 for r in result.items) for result in (cf, heavy)]
    assert metal[1] > metal[0] and metal[1] >= 6


def test_settings_that_do_not_go_together_are_refused():
    with pytest.raises(EmbedderError, match="hybrid_base must be one of"):
        HybridParams(base="content")
    with pytest.raises(EmbedderError, match="dbsf fusion has no per-branch weights"):
        HybridParams(fusion="dbsf", content_weight=0.5)
    assert HybridParams(content_weight=0).branches == ("cf",)
    settings = load_settings(hybrid_base="auto", hybrid_content="words")
    assert HybridParams.from_settings(settings, {"strategy": "ease"}).base == "ease"
    assert HybridParams.from_settings(settings, {"strategy": "trained"}).base == "cf"  # not collaborative
    assert HybridParams.from_settings(settings, None) == HybridParams("cf", "words", "rrf", 1.0, 60)


def test_tuning_tries_the_model_alone_and_prefers_the_simpler_of_equals():
    tried = []

    def score(params):
        tried.append(params)
        return 0.5 if params.content == "words" and params.content_weight in (0.25, 0.5) else 0.4

    result = tune_hybrid(score, HybridParams(base="ease"), ("content", "words"))
    assert len(tried) == 1 + 2 * (len(RRF_WEIGHTS) + 2) and tried[0].content_weight == 0
    assert result["chosen"] == HybridParams("ease", "words", "rrf", 0.25, SMALL_RRF_K) and result["adds"] is True
    assert result["base_alone"] == 0.4
    flat = tune_hybrid(lambda p: 0.3, HybridParams(), ("content",))
    assert flat["chosen"].content_weight == 0 and flat["adds"] is False  # nothing to gain: the model alone
    with pytest.raises(EmbedderError, match="no content side"):
        tune_hybrid(score, HybridParams(), ())


def test_eval_tunes_the_hybrid_on_validation_and_says_whether_it_adds(shop):
    lib, events = shop
    result = evaluate(
        events,
        split="random-holdout",
        methods=("popular", "cf", "words", "hybrid"),
        cf=CFParams(factors=8, iterations=10),
        tune=True,
        media=lib.media,
        seed=0,
    )
    tuning = result["tuning_hybrid"]
    assert tuning["base"] == "cf"  # the only collaborative model compared
    assert [t["val_ndcg@10"] for t in tuning["trials"]] == sorted(
        (t["val_ndcg@10"] for t in tuning["trials"]), reverse=True
    )
    assert {t["content"] for t in tuning["trials"]} == {"content", "words"}
    assert result["settings"]["hybrid"] == {**tuning["chosen"], "tuned": True}
    best = tuning["trials"][0]["val_ndcg@10"]
    assert best >= tuning["base_alone_val_ndcg@10"] and tuning["adds_on_validation"] == (
        best > tuning["base_alone_val_ndcg@10"]
    )
    ratio = result["details"]["hybrid"]["vs_base_ndcg@10"]
    assert ratio == pytest.approx(result["methods"]["hybrid"]["ndcg@10"] / result["methods"]["cf"]["ndcg@10"], abs=1e-3)
    # The words carry the genre the users' taste follows: they rank well above popularity here.
    assert result["methods"]["words"]["ndcg@10"] > 1.5 * result["methods"]["popular"]["ndcg@10"]
    assert item_point_id("i00") in {r.id for r in lib.media.retrieve([item_point_id("i00")])}


def test_train_auto_tunes_the_hybrid_records_it_and_serves_it_where_it_adds(shop, tmp_path):
    from embedder.recommend.auto import train_auto, why_served

    lib, events = shop
    result = train_auto(
        events,
        lib.media,
        lib.users,
        cf=CFParams(factors=64, iterations=10),
        item_item={},
        candidates=("cf",),
        seed=0,
    )
    record, fused = result["record"], result["record"]["hybrid"]
    assert fused["base"] == "cf" and fused["validation_users"] > 0
    assert fused["validation_ndcg@10"] >= fused["base_alone_validation_ndcg@10"]
    assert record["strategy"] == ("hybrid" if fused["adds"] else "cf")
    served = HybridParams.from_settings(load_settings(), record)
    assert served.to_dict() == {k: fused[k] for k in ("base", "content", "fusion", "content_weight", "rrf_k")}
    given = HybridParams.from_settings(load_settings(hybrid_content_weight=0.0), record)
    assert given.content_weight == 0.0 and given.base == "cf"  # a setting given wins over the record
    if fused["adds"]:
        assert why_served(record).startswith("hybrid of cf") and "alone on the same users" in why_served(record)
