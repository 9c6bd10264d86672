"""Collaborative filtering on a synthetic log whose right answer is known."""

import numpy as np
import pytest

from embedder.errors import EmbedderError
from embedder.ids import item_point_id, user_point_id
from embedder.recommend.cf import CFParams, fit_cf, write_cf
from embedder.recommend.interactions import Interaction
from embedder.recommend.queries import recommend_for_user
from embedder.settings import load_settings
from embedder.store import open_store


def block_log():
    """Two communities of 10 users and 10 items; each user has 8 of their community's items.

    The right answer for a user is the 2 community items they have not seen.
    """
    events, held = [], {}
    for g in range(2):
        items = [f"g{g}-item{i}" for i in range(10)]
        for u in range(10):
            user = f"g{g}-user{u}"
            missing = {items[u], items[(u + 3) % 10]}
            held[user] = missing
            events += [
                Interaction(user, it, float(1 + (i % 3)), seq=0) for i, it in enumerate(items) if it not in missing
            ]
    return events, held


@pytest.mark.parametrize("model", ["als", "bpr"])
def test_cf_served_by_qdrant_finds_the_missing_items(tmp_path, model):
    events, held = block_log()
    fitted = fit_cf(events, CFParams(factors=4, iterations=30), model=model, seed=0)
    assert fitted.item_factors.shape == (20, 4) and fitted.user_factors.shape == (20, 4)
    settings = load_settings(store=str(tmp_path / "s"))
    with open_store(settings) as media, open_store(settings, collection="media_users") as users:
        media.ensure_collection({"cf": 4, "cf_sim": 4})  # a collection of interaction-only items
        summary = write_cf(fitted, media, users)
        assert (summary["items_without_media"], summary["users"]) == (20, 20)
        rec = media.retrieve([item_point_id("g0-item0")])[0]
        assert rec.payload["item"] == "g0-item0" and rec.payload["popularity"] == 8.0
        hits, community = 0, 0
        for user, missing in held.items():
            history = [e for e in events if e.user == user]
            result = recommend_for_user(user, history, media, users, limit=2, strategy="cf")
            got = {r.item for r in result.items}
            hits += len(got & missing)
            community += sum(item.split("-")[0] == user.split("-")[0] for item in got)
        assert community == 40  # every recommendation comes from the user's own community
        if model == "als":
            assert hits == 40  # and ALS puts exactly the two held-out items on top
        # retraining replaces users that are gone
        fewer = fit_cf([e for e in events if not e.user.startswith("g1")], CFParams(factors=4), model=model, seed=0)
        write_cf(fewer, media, users)
        assert users.count() == 10 and not users.retrieve([user_point_id("g1-user0")])


def test_als_is_deterministic_and_needs_positive_events():
    events, _ = block_log()
    a, b = fit_cf(events, CFParams(factors=4), seed=7), fit_cf(events, CFParams(factors=4), seed=7)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    with pytest.raises(EmbedderError, match="no positive interactions"):
        fit_cf([Interaction("u", "i", -1.0)])


def test_most_popular_breaks_ties_by_id_so_answers_repeat(tmp_path):
    from embedder.recommend.queries import most_popular
    from embedder.settings import load_settings
    from embedder.store import PointRecord, open_store

    ids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(40)]
    with open_store(load_settings(store=str(tmp_path / "s"))) as store:
        store.ensure_collection({"cf": 2})
        # One clear favourite, then a 39-way tie: Qdrant alone returns the tie in arbitrary order.
        store.upsert(
            [
                PointRecord(i, {"cf": [1.0, 0.0]}, {"popularity": 9.0 if n == 17 else 2.0})
                for n, i in enumerate(reversed(ids))
            ]
        )
        top = most_popular(store, limit=4)
        assert [h.id for h in top] == [ids[22], ids[0], ids[1], ids[2]]  # 17th of the reversed list is ids[22]
        assert [h.score for h in top] == [9.0, 2.0, 2.0, 2.0]
        assert [h.id for h in most_popular(store, limit=4, exclude_ids=[ids[0]])] == [ids[22], ids[1], ids[2], ids[3]]


def test_an_item_with_near_zero_factors_is_stored_and_read_as_sound(tmp_path):
    """ALS can leave an item few users touched with factors of length ~1e-4; the engine does not
    normalise a cosine vector that small, and such a point must not read as damage."""
    from embedder.recommend.cf import CFModel
    from embedder.store import Nearest, PointRecord

    model = CFModel(
        kind="als",
        users=["u"],
        items=["tiny", "zero", "plain"],
        user_factors=np.ones((1, 4), np.float32),
        item_factors=np.asarray([[3e-4, 0, 0, 0], [0, 0, 0, 0], [0.5, 0.5, 0, 0]], np.float32),
        version="als-test",
    )
    settings = load_settings(store=str(tmp_path / "s"))
    with open_store(settings) as media, open_store(settings, collection="media_users") as users:
        media.ensure_collection({"cf": 4, "cf_sim": 4})
        write_cf(model, media, users)
        stored = {r.payload["item"]: r.vectors for r in media.scroll(with_vectors=True)}
        assert np.allclose(stored["tiny"]["cf_sim"], [1, 0, 0, 0]) and "cf_sim" not in stored["zero"]
        # A point written before this normalisation (the engine kept it as given) reads as sound.
        media.upsert([PointRecord(item_point_id("old"), {"cf_sim": np.asarray([2e-4, 0, 0, 0], np.float32)})])
        assert media.retrieve([item_point_id("old")], with_vectors=True)[0].vectors["cf_sim"][0] < 1e-3
        assert len(media.search(Nearest(np.asarray([1, 0, 0, 0], np.float32), "cf_sim"), limit=5)) == 3
