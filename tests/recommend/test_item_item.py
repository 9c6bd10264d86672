"""Item-to-item models (EASE, RP3beta, item-kNN): the math against independent dense formulas,
and their serving as Qdrant sparse queries against ``x_u @ B`` in numpy, on both back-ends."""

import json
import random

import numpy as np
import pytest

from embedder.errors import EmbedderError
from embedder.ids import item_point_id
from embedder.recommend.interactions import Interaction
from embedder.recommend.itemitem import ItemItemParams, ease_item_limit, fit_item_item, weighted_matrix
from embedder.recommend.queries import recommend_for_user
from embedder.recommend.sparse import INDEX_KEY, model_key, write_item_item
from embedder.recommend.splits import split_events
from embedder.recommend.tune import _widened, tune_item_item
from embedder.settings import load_settings
from embedder.store import open_store
from tests.cli_runner import run_cli


def random_log(users=40, items=60, per_user=(4, 15), seed=0):
    """Users with a taste for one of three item groups, continuous weights (so scores do not tie)."""
    rng = random.Random(seed)
    events, seq = [], 0
    for u in range(users):
        group = u % 3
        liked = [i for i in range(items) if i % 3 == group or rng.random() < 0.1]
        for i in rng.sample(liked, min(len(liked), rng.randint(*per_user))):
            events.append(Interaction(f"user{u:02d}", f"item{i:02d}", 1.0 + rng.random() * 9, seq=seq))
            seq += 1
    return events


def dense_x(events, weighting, items):
    x, users, _ = weighted_matrix(events, weighting, items)
    return x.toarray().astype(np.float64), users


def test_ease_is_stecks_closed_form():
    events = random_log()
    model = fit_item_item(events, ItemItemParams("ease", l2=7.0, neighbours=1000))
    x, _ = dense_x(events, "binary", model.items)
    inverse = np.linalg.inv(x.T @ x + 7.0 * np.eye(x.shape[1]))  # numpy's LU, float64: independent of LAPACK potri
    expected = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(model.weights.toarray(), expected, atol=2e-5)
    assert model.weights.nnz > 0.9 * len(model.items) ** 2  # nothing pruned at neighbours >= items


def test_rp3beta_and_itemknn_match_their_dense_formulas():
    events = random_log(seed=1)
    rp3 = fit_item_item(events, ItemItemParams("rp3beta", alpha=0.7, beta=0.3, neighbours=1000))
    x, _ = dense_x(events, "binary", rp3.items)
    p_ui = (x / x.sum(axis=1, keepdims=True)) ** 0.7
    p_iu = (x.T / x.T.sum(axis=1, keepdims=True)) ** 0.7
    walk = (p_iu @ p_ui) / (x.sum(axis=0)[None, :] ** 0.3)
    np.fill_diagonal(walk, 0.0)
    assert np.allclose(rp3.weights.toarray(), walk, atol=1e-6)

    knn = fit_item_item(events, ItemItemParams("itemknn", shrink=5.0, neighbours=1000, weighting="log1p"))
    x, _ = dense_x(events, "log1p", knn.items)
    norms = np.linalg.norm(x, axis=0)
    cosine = (x.T @ x) / (np.outer(norms, norms) + 5.0)
    np.fill_diagonal(cosine, 0.0)
    assert np.allclose(knn.weights.toarray(), cosine, atol=1e-6)


def test_pruning_keeps_each_columns_largest_weights():
    events = random_log()
    full = fit_item_item(events, ItemItemParams("ease", neighbours=1000)).weights.toarray()
    pruned = fit_item_item(events, ItemItemParams("ease", neighbours=5)).weights.toarray()
    for column in range(full.shape[1]):
        kept = np.flatnonzero(pruned[:, column])
        assert len(kept) == 5
        assert set(kept) == set(np.argsort(-np.abs(full[:, column]))[:5])
        assert np.allclose(pruned[kept, column], full[kept, column])


def _stores(backend, tmp_path, request):
    location = str(tmp_path / "s") if backend == "edge" else request.getfixturevalue("in_process_server")
    media = open_store(load_settings(store=location, collection="i2i"))
    media.ensure_collection({"cf": 4, "cf_sim": 4})
    return media


def _numpy_top(model, events, user, k=10):
    """The top ``k`` (item, score) of ``x_u @ B`` with the user's items left out."""
    x, users = dense_x(events, model.params.weighting, model.items)
    scores = x[users.index(user)] @ model.weights.toarray().astype(np.float64)
    seen = {e.item for e in events if e.user == user}
    ranked = [(model.items[i], scores[i]) for i in np.argsort(-scores, kind="stable") if model.items[i] not in seen]
    return [pair for pair in ranked if pair[1] != 0][:k]


@pytest.mark.parametrize("backend", ["edge", "memory"])
@pytest.mark.parametrize("kind", ["ease", "rp3beta", "itemknn"])
def test_sparse_query_returns_exactly_x_u_times_b(backend, kind, tmp_path, request):
    events = random_log()
    model = fit_item_item(events, ItemItemParams(kind, neighbours=12, weighting="log1p"))
    media = _stores(backend, tmp_path, request)
    with media:
        summary = write_item_item(model, media)
        assert summary["items"] == len(model.items) and summary["weights"] == model.weights.nnz
        for user in sorted({e.user for e in events})[:15]:
            history = [e for e in events if e.user == user]
            result = recommend_for_user(user, history, media, None, limit=10, strategy=kind)
            expected = _numpy_top(model, events, user)
            assert result.used == [kind]
            assert [r.item for r in result.items] == [item for item, _ in expected]
            assert np.allclose([r.score for r in result.items], [s for _, s in expected], rtol=1e-4, atol=1e-6)


def test_a_new_event_changes_the_next_answer_and_filters_apply(tmp_path, request):
    events = random_log()
    model = fit_item_item(events, ItemItemParams("ease", neighbours=30))
    media = _stores("edge", tmp_path, request)
    with media:
        write_item_item(model, media)
        user = "user00"
        history = [e for e in events if e.user == user]
        before = recommend_for_user(user, history, media, None, limit=10, strategy="ease")
        top = before.items[0].item
        # The user now likes the item at the top: it leaves the list (seen), and the query grows.
        after = recommend_for_user(
            user, [*history, Interaction(user, top, 1.0, seq=10**6)], media, None, limit=10, strategy="ease"
        )
        assert top not in [r.item for r in after.items]
        assert [r.item for r in after.items] == [
            i for i, _ in _numpy_top(model, [*events, Interaction(user, top, 1)], user)
        ]
        # A filter on the payload narrows what the same query may return.
        allowed = [r.item for r in before.items[3:8]]
        narrowed = recommend_for_user(user, history, media, None, limit=10, strategy="ease", filter={"item": allowed})
        assert [r.item for r in narrowed.items] == allowed


def test_explanations_name_the_exact_contributions(tmp_path, request):
    events = random_log()
    model = fit_item_item(events, ItemItemParams("itemknn", neighbours=20, weighting="log1p"))
    media = _stores("edge", tmp_path, request)
    with media:
        write_item_item(model, media)
        user = "user05"
        history = [e for e in events if e.user == user]
        result = recommend_for_user(user, history, media, None, limit=3, strategy="itemknn")
        b = model.weights.toarray()
        index = {item: n for n, item in enumerate(model.items)}
        for rec in result.items:
            column = b[:, index[rec.item]]
            parts = sorted(
                ((e.item, np.log1p(e.weight) * column[index[e.item]]) for e in history if column[index[e.item]]),
                key=lambda p: -p[1],
            )
            assert np.isclose(sum(c for _, c in parts), rec.score, rtol=1e-4)  # the parts add up to the score
            (why,) = rec.because
            assert why["branch"] == "itemknn"
            named = [(p["item"], p["contribution"]) for p in why["because_you_liked"]]
            assert [n for n, _ in named] == [n for n, _ in parts[:2]], (named, parts[:3])
            assert np.allclose([c for _, c in named], [c for _, c in parts[:2]], atol=1e-5)
            assert rec.reason.startswith("itemknn: because you liked")


def test_retraining_keeps_indices_and_drops_stale_vectors(tmp_path, request):
    events = random_log()
    media = _stores("edge", tmp_path, request)
    with media:
        write_item_item(fit_item_item(events, ItemItemParams("rp3beta", neighbours=10)), media)
        first = {r.payload["item"]: r.payload[INDEX_KEY] for r in media.scroll()}
        gone = "item00"
        later = [e for e in events if e.item != gone] + [Interaction("user00", "item99", 2.0, seq=10**6)]
        write_item_item(fit_item_item(later, ItemItemParams("rp3beta", neighbours=10)), media)
        second = {r.payload["item"]: r.payload[INDEX_KEY] for r in media.scroll()}
        assert all(second[item] == index for item, index in first.items())  # stable numbering
        assert second["item99"] == max(first.values()) + 1
        old = media.retrieve([item_point_id(gone)], with_vectors=["rp3beta"])[0]
        assert "rp3beta" not in old.vectors and old.payload.get(model_key("rp3beta")) is None
        kept = media.retrieve([item_point_id("item01")], with_vectors=["rp3beta"])[0]
        assert len(kept.vectors["rp3beta"]) == 10


def test_ease_keeps_the_most_popular_items_beyond_its_limit():
    events = random_log()
    popularity = {}
    for e in events:
        popularity.setdefault(e.item, set()).add(e.user)
    model = fit_item_item(events, ItemItemParams("ease", max_items=20))
    assert len(model.items) == 20 and model.left_out == len(popularity) - 20
    least_kept = min(len(popularity[i]) for i in model.items)
    assert all(len(users) <= least_kept for item, users in popularity.items() if item not in model.items)
    assert ease_item_limit(8 * 1024**3) == int(((8 * 1024**3 * 0.5 - 512 * 1024**2) / 4) ** 0.5)
    with pytest.raises(EmbedderError, match="must be one of"):
        ItemItemParams("slim")


def test_tuning_sees_only_training_and_widens_past_the_edge():
    events = random_log(users=60)
    data = split_events(events, "random-holdout", seed=3)
    tuned = tune_item_item(data.train, base=ItemItemParams("ease"), grid={"l2": [1.0, 2.0]}, seed=3)
    # l2 of 1 or 2 is far below this log's optimum: the grid is widened upward until it is interior.
    assert tuned["chosen"].l2 > 2.0 or "l2" in tuned["at_edge"]
    tried = sorted({t["params"]["l2"] for t in tuned["trials"]})
    assert tried[:2] == [1.0, 2.0] and len(tried) > 2
    # The same training part with a different test part tunes the same: the test part is never read.
    other = tune_item_item(data.train, base=ItemItemParams("ease"), grid={"l2": [1.0, 2.0]}, seed=3)
    assert other["chosen"] == tuned["chosen"]
    assert _widened([0.0, 0.2, 0.4], 0, "beta") is None  # a floor is a real edge
    assert _widened([25, 50, 100], 2, "neighbours") == [25, 50, 100, 200]
    assert _widened([0.5, 1.0], 0, "alpha") == [0.25, 0.5, 1.0]


def test_cli_trains_serves_and_evaluates_an_item_to_item_model(tmp_path):
    log = tmp_path / "log.tsv"
    log.write_text("".join(f"{e.user}\t{e.item}\t{e.weight:.3f}\n" for e in random_log()))
    store = ["--store", str(tmp_path / "store")]
    run_cli(*store, "interactions", "import", log, "--format", "tsv", "--columns", "user,item,weight")
    trained = json.loads(run_cli(*store, "interactions", "train", "--model", "ease", "--json").stdout)
    assert trained["kind"] == "ease" and trained["items"] == 60 and trained["items_without_media"] == 60
    rec = json.loads(run_cli(*store, "recommend", "--user", "user01", "--strategy", "ease", "--json").stdout)
    assert rec["used"] == ["ease"] and len(rec["items"]) == 10
    assert all(r["because"][0]["because_you_liked"] for r in rec["items"])
    explained = run_cli(*store, "recommend", "--user", "user01", "--strategy", "ease", "--explain").stdout
    assert "ease: you liked item" in explained and "(+0." in explained  # each liked item's exact part
    text = run_cli(*store, "recommend", "--user", "user01", "--strategy", "rp3beta").stdout
    assert "no stored rp3beta model covers this user's items" in text and "--model rp3beta" in text
    bad = run_cli(*store, "interactions", "train", "--model", "slim", code=2)
    assert "--model must be one of als, bpr, ease, rp3beta, itemknn" in bad.stderr
    report = json.loads(
        run_cli(*store, "eval", "--split", "random-holdout", "--methods", "popular,ease,itemknn", "--json").stdout
    )
    assert set(report["methods"]) == {"popular", "ease", "itemknn"}
    assert report["methods"]["ease"]["ndcg@10"] > report["methods"]["popular"]["ndcg@10"]
    assert report["settings"]["ease"]["l2"] == 200.0 and report["details"]["ease"]["weights"] > 0


def test_a_server_collection_made_before_sparse_vectors_says_what_to_do(in_process_server):
    from qdrant_client import models

    from embedder.errors import StoreError
    from embedder.store.server import _SHARED_CLIENTS

    client = _SHARED_CLIENTS[in_process_server]
    client.create_collection("old", vectors_config={"cf": models.VectorParams(size=2, distance=models.Distance.DOT)})
    with open_store(load_settings(store=in_process_server, collection="old")) as media:
        assert media.sparse_names() == set()
        with pytest.raises(StoreError, match="has no sparse vector 'ease'.*made before item-to-item models"):
            write_item_item(fit_item_item(random_log(), ItemItemParams("ease")), media)
