import numpy as np
import pytest

from embedder.fusion import fuse, fuse_query, item_weights, pool, split_content

DIMS = {"visual": 8, "audio": 6, "text": 8}
W = {"visual": 0.5, "audio": 0.3, "text": 0.2}


def unit(rng, n):
    v = rng.standard_normal(n).astype(np.float32)
    return v / np.linalg.norm(v)


def test_pool_is_normalised_mean_of_unit_vectors():
    got = pool(np.array([[3.0, 0.0], [0.0, 0.5]]))
    np.testing.assert_allclose(got, [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    with pytest.raises(ValueError):
        pool(np.zeros((0, 2)))


def test_item_weights_renormalise_over_present_modalities():
    assert item_weights(["visual", "audio", "text"], W) == pytest.approx(W)
    assert item_weights(["audio", "text"], W) == pytest.approx({"visual": 0.0, "audio": 0.6, "text": 0.4})


def test_content_dot_product_is_weighted_sum_of_modality_cosines():
    rng = np.random.default_rng(0)
    a = {m: unit(rng, d) for m, d in DIMS.items()}
    b = {m: unit(rng, d) for m, d in DIMS.items()}
    ca, cb = fuse(a, DIMS, W), fuse(b, DIMS, W)
    expected = sum(W[m] * float(a[m] @ b[m]) for m in DIMS)
    assert float(ca @ cb) == pytest.approx(expected, abs=1e-6)
    assert np.linalg.norm(ca) == pytest.approx(1.0, abs=1e-6)


def test_missing_modality_zeroes_its_block_and_keeps_unit_length():
    rng = np.random.default_rng(1)
    silent = {"visual": unit(rng, 8), "audio": None, "text": unit(rng, 8)}
    full = {m: unit(rng, d) for m, d in DIMS.items()}
    c = fuse(silent, DIMS, W)
    assert np.linalg.norm(c) == pytest.approx(1.0, abs=1e-6)
    assert not split_content(c, DIMS)["audio"].any()
    w = item_weights(["visual", "text"], W)  # 0.714, 0.286
    expected = sum(np.sqrt(w[m] * W[m]) * float(silent[m] @ full[m]) for m in ("visual", "text"))
    assert float(c @ fuse(full, DIMS, W)) == pytest.approx(expected, abs=1e-6)


def test_text_query_scores_weighted_sum_against_a_full_item():
    rng = np.random.default_rng(2)
    clip_t, clap_t = unit(rng, 8), unit(rng, 6)
    item = {m: unit(rng, d) for m, d in DIMS.items()}
    q = fuse_query({"visual": clip_t, "audio": clap_t, "text": clip_t}, W)
    expected = (
        W["visual"] * item["visual"] @ clip_t + W["audio"] * item["audio"] @ clap_t + W["text"] * item["text"] @ clip_t
    )
    assert float(q @ fuse(item, DIMS, W)) == pytest.approx(float(expected), abs=1e-6)
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-6)
