"""The bounds a sound collection's answers stay within (embedder.store.integrity), value by value."""

import numpy as np
import pytest

from embedder.store.base import Hit, Nearest, PointRecord, Recommend
from embedder.store.integrity import DamagedStoreError, checked_fused, checked_records, checked_search


def unit(*xs):
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def test_cosine_scores_outside_minus_one_to_one_are_damage():
    spec = Nearest(unit(1, 0), "content")
    assert checked_search([Hit("a", 1.0004, {}), Hit("b", -1.0, {})], "media", spec)
    for bad in (1.29e37, -1.98e9, 1.01, float("nan"), float("inf")):
        with pytest.raises(DamagedStoreError, match="collection 'media' is damaged: item x scored"):
            checked_search([Hit("x", bad, {})], "media", spec)


def test_dot_scores_are_bounded_by_the_query_length_and_the_factor_limit():
    spec = Nearest(np.full(4, 3.0), "cf")  # |q| = 6
    assert checked_search([Hit("a", 5_000.0, {})], "media_users", spec)
    with pytest.raises(DamagedStoreError, match="media_users"):
        checked_search([Hit("a", 1.73e37, {})], "media_users", spec)
    assert checked_search([Hit("a", 0.9, {})], "m", Recommend([unit(1, 0)], [], "content"))
    with pytest.raises(DamagedStoreError):
        checked_search([Hit("a", 3.2e36, {})], "m", Recommend([unit(1, 0)], [], "content"))


def test_vectors_read_back_must_be_unit_length_or_plausible_factors():
    ok = PointRecord("a", {"content": unit(1, 2), "cf": np.full(8, 2.0, np.float32)})
    assert checked_records([ok], "media") == [ok]
    for name, vector in (
        ("visual", np.asarray([3.2e36, 1.0], np.float32)),
        ("visual", np.asarray([np.nan, 1.0])),
        ("content", np.asarray([0.5, 0.5], np.float32)),
        ("cf", np.full(8, 8.95e6, np.float32)),
    ):
        with pytest.raises(DamagedStoreError, match=f"point b: {name} vector"):
            checked_records([PointRecord("b", {name: vector})], "media")


def test_fused_scores_stay_within_what_rrf_gives():
    assert checked_fused([Hit("a", 2 / 61, {})], "media", 2, None)
    with pytest.raises(DamagedStoreError):
        checked_fused([Hit("a", 0.5, {})], "media", 2, None)
    with pytest.raises(DamagedStoreError):
        checked_fused([Hit("a", -0.01, {})], "media", 2, None)
