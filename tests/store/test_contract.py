"""One suite, every back-end: embedded Qdrant Edge, qdrant-client in-process, and a real server
when QDRANT_URL is set."""

import logging
import os

import numpy as np
import pytest

from embedder.errors import StoreError
from embedder.settings import load_settings
from embedder.store import Nearest, PointRecord, Sparse, SparseNearest, open_store, point_id

DIMS = {"visual": 4, "audio": 3, "text": 4, "content": 11}
# A real Qdrant server joins when QDRANT_URL is set; select or skip it with -m server / -m "not server".
BACKENDS = ["edge", "memory"] + (
    [pytest.param("server", marks=pytest.mark.server)] if os.environ.get("QDRANT_URL") else []
)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "edge":
        s = open_store(load_settings(store=str(tmp_path / "store"), collection="contract"))
    elif request.param == "memory":
        s = open_store(load_settings(store=request.getfixturevalue("in_process_server"), collection="contract"))
    else:
        name = f"contract_{os.getpid()}"
        s = open_store(
            load_settings(store=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"), collection=name)
        )
        request.addfinalizer(lambda: s.client.delete_collection(name))
    yield s
    s.close()


def vec(*values):
    return np.asarray(values, dtype=np.float32)


def points():
    return [
        PointRecord(
            point_id("a"),
            {"visual": vec(1, 0, 0, 0), "text": vec(0, 1, 0, 0), "content": vec(*([1] + [0] * 10))},
            {"path": "/m/a.mp4", "paths": ["/m/a.mp4"], "kind": "video", "modalities": ["visual", "text"]},
        ),
        PointRecord(
            point_id("b"),
            {"audio": vec(1, 0, 0), "text": vec(0, 0, 1, 0), "content": vec(*([0] * 10 + [1]))},
            {"path": "/m/b.mp3", "paths": ["/m/b.mp3"], "kind": "audio", "modalities": ["audio", "text"]},
        ),
        PointRecord(
            point_id("c"),
            {
                "visual": vec(1, 1, 0, 0),
                "audio": vec(0, 1, 0),
                "text": vec(1, 0, 0, 0),
                "content": vec(*([1, 1] + [0] * 9)),
            },
            {
                "path": "/m/c.mp4",
                "paths": ["/m/c.mp4", "/n/c.mp4"],
                "kind": "video",
                "modalities": ["visual", "audio", "text"],
            },
        ),
    ]


def test_empty_store_before_collection_exists(store):
    assert store.collection_dims() is None
    assert store.count() == 0 and list(store.scroll()) == [] and store.retrieve([point_id("a")]) == []
    assert store.info()["exists"] is False


def test_roundtrip_filters_and_queries(store):
    store.ensure_collection(DIMS)
    store.ensure_collection(DIMS)  # idempotent
    assert store.collection_dims() == DIMS
    store.upsert(points())
    assert store.count() == 3
    assert store.count({"kind": "video"}) == 2
    assert store.count({"modalities": "audio"}) == 2
    assert store.count({"paths": "/n/c.mp4"}) == 1
    assert store.count({"paths": ["/m/a.mp4", "/m/b.mp3"]}) == 2
    assert {r.id for r in store.scroll({"kind": "audio"})} == {point_id("b")}
    got = store.retrieve([point_id("c")], with_vectors=True)[0]
    assert got.payload["paths"] == ["/m/c.mp4", "/n/c.mp4"]
    np.testing.assert_allclose(got.vectors["visual"], [0.70710677, 0.70710677, 0, 0], atol=1e-6)  # cosine: stored unit
    hits = store.search(Nearest(vec(1, 0, 0, 0), "visual"), limit=5, with_vectors=True)
    assert [h.id for h in hits] == [point_id("a"), point_id("c")]  # b has no visual vector
    assert [round(h.score, 4) for h in hits] == [1.0, 0.7071]
    assert set(hits[0].vectors) == {"visual", "text", "content"}
    hits = store.search(Nearest(vec(1, 0, 0, 0), "text"), limit=5, filter={"kind": "video"})
    assert [h.id for h in hits] == [point_id("c"), point_id("a")]


def test_payload_update_replace_and_delete(store):
    store.ensure_collection(DIMS)
    store.upsert(points())
    store.set_payload([point_id("a")], {"paths": ["/m/a.mp4", "/x/a.mp4"], "path": "/m/a.mp4"})
    assert store.retrieve([point_id("a")])[0].payload["paths"] == ["/m/a.mp4", "/x/a.mp4"]
    assert store.retrieve([point_id("a")])[0].payload["kind"] == "video"  # merged, not replaced
    replacement = PointRecord(
        point_id("a"),
        {"text": vec(0, 0, 0, 1), "content": vec(*([0] * 5 + [1] + [0] * 5))},
        {"path": "/m/a.mp4", "paths": ["/m/a.mp4"], "kind": "audio"},
    )
    store.upsert([replacement])
    assert store.count() == 3 and store.retrieve([point_id("a")])[0].payload["kind"] == "audio"
    store.delete([point_id("a"), point_id("missing")])
    assert store.count() == 2 and store.retrieve([point_id("a")]) == []


def test_other_models_cannot_share_a_collection(store):
    store.ensure_collection(DIMS)
    with pytest.raises(StoreError, match="holds vectors of sizes"):
        store.ensure_collection({**DIMS, "visual": 8})


def test_embedded_store_lock_and_reopen(tmp_path):
    settings = load_settings(store=str(tmp_path / "s"))
    first = open_store(settings)
    first.ensure_collection(DIMS)
    first.upsert(points())
    from embedder.store.edge import EdgeStore

    with pytest.raises(StoreError, match=r"is in use by another embedder process \(pid \d+\)"):
        EdgeStore(settings.store, "media_v1", wait_s=0.2)
    first.close()
    with open_store(settings) as again:
        assert again.count() == 3
        assert again.info()["size_bytes"] > 0


def test_second_process_gets_a_clear_error(tmp_path):
    import subprocess
    import sys

    settings = load_settings(store=str(tmp_path / "s"))
    with open_store(settings) as store:
        store.ensure_collection({"visual": 4})  # a store that exists: the second process finds it held
        proc = subprocess.run(
            [sys.executable, "-m", "embedder.cli", "--store", str(tmp_path / "s"), "status"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert "is in use by another embedder process" in proc.stderr and "Traceback" not in proc.stderr


def test_api_key_is_never_shown_and_http_warns(caplog):
    from qdrant_client import QdrantClient

    from embedder.store.server import share_client

    settings = load_settings(store="http://127.0.0.1:9", api_key="s3cret-key")
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    with caplog.at_level(logging.WARNING, logger="embedder.store.server"):
        with pytest.raises(StoreError) as err:
            open_store(settings)  # nothing listens on port 9: the error names the URL, not the key
    assert "cannot reach Qdrant at http://127.0.0.1:9" in str(err.value)
    assert "s3cret" not in str(err.value) and "s3cret" not in caplog.text
    assert "API key is sent over plain http" in caplog.text
    share_client(settings.store, QdrantClient(":memory:"))
    try:
        assert "s3cret" not in str(open_store(settings).info())
    finally:
        share_client(settings.store, None)


def test_recommend_fusion_ordering_vector_updates(store):
    from embedder.store import Nearest, Recommend

    dims = {**DIMS, "cf": 2}
    store.ensure_collection(dims)
    store.upsert(points())
    store.update_vectors(
        {point_id("a"): {"cf": vec(3, 0)}, point_id("b"): {"cf": vec(1, 1)}, point_id("c"): {"cf": vec(0, 2)}}
    )
    store.set_payload([point_id("a")], {"popularity": 5.0})
    store.set_payload([point_id("b")], {"popularity": 9.0})
    store.set_payload([point_id("c")], {"popularity": 1.0})
    kept = store.retrieve([point_id("a")], with_vectors=True)[0]
    assert set(kept.vectors) == {"visual", "text", "content", "cf"}  # other vectors survive
    np.testing.assert_allclose(kept.vectors["cf"], [3, 0])  # dot-product vectors are stored as given
    # cf scores are dot products: the user (1, 1) prefers a (3) to b (2) to c (2, later id order aside)
    hits = store.search(Nearest(vec(1, 1), "cf"), limit=3)
    assert [round(h.score, 4) for h in hits] == [3.0, 2.0, 2.0] and hits[0].id == point_id("a")
    hits = store.search(Nearest(vec(1, 1), "cf"), limit=3, exclude_ids=[point_id("a")])
    assert point_id("a") not in {h.id for h in hits} and len(hits) == 2
    rec = store.search(Recommend([vec(1, 0, 0, 0)], [vec(1, 1, 0, 0)], "visual"), limit=3, exclude_ids=[point_id("a")])
    assert [h.id for h in rec] == [point_id("c")]
    fused = store.fused([(Nearest(vec(1, 0), "cf"), 3), (Nearest(vec(0, 0, 1, 0), "text"), 3)], limit=3)
    assert fused[0].id in {point_id("a"), point_id("b")} and len(fused) == 3
    assert fused[0].score > fused[-1].score
    top = store.top_by("popularity", limit=2)
    assert [h.id for h in top] == [point_id("b"), point_id("a")] and [h.score for h in top] == [9.0, 5.0]
    top = store.top_by("popularity", limit=5, filter={"kind": "video"}, exclude_ids=[point_id("a")])
    assert [h.id for h in top] == [point_id("c")]


def test_queries_restricted_to_points_lacking_a_vector(store):
    from embedder.store import Nearest, Recommend

    store.ensure_collection({**DIMS, "cf": 2})
    store.upsert(points())
    store.update_vectors({point_id("a"): {"cf": vec(1, 0)}})  # a is "warm"; b and c have no cf vector
    hits = store.search(Nearest(vec(1, 0, 0, 0), "text", lacking="cf"), limit=5)
    assert {h.id for h in hits} == {point_id("b"), point_id("c")}
    rec = store.search(Recommend([vec(1, 0, 0, 0)], [], "text", lacking="cf"), limit=5)
    assert rec[0].id == point_id("c")
    fused = store.fused([(Nearest(vec(1, 0), "cf"), 3), (Nearest(vec(1, 0, 0, 0), "text", lacking="cf"), 3)], limit=5)
    assert {h.id for h in fused} == {point_id("a"), point_id("b"), point_id("c")}


def test_typed_filters_behave_the_same_on_every_backend(store):
    from embedder.payload import parse_filters

    store.ensure_collection(DIMS)
    sized = []
    for p, size, duration in zip(points(), (16033, 2_000_000, 500), (12.5, 3.0, 61.0)):
        p.payload.update(size=size, duration=duration)
        sized.append(p)
    store.upsert(sized)

    def paths(*conditions):
        return sorted(r.payload["path"] for r in store.scroll(parse_filters(list(conditions))))

    assert paths("size=16033") == ["/m/a.mp4"]  # a number compares as a number
    assert paths("size<1e6") == ["/m/a.mp4", "/m/c.mp4"]
    assert paths("duration>10") == ["/m/a.mp4", "/m/c.mp4"]
    assert paths("duration>10", "duration<=60") == ["/m/a.mp4"]  # a repeated key: both hold
    assert paths("duration=12.5") == ["/m/a.mp4"]
    assert paths("kind=video,audio") == ["/m/a.mp4", "/m/b.mp3", "/m/c.mp4"]  # any of
    assert paths("kind=video", "modalities=audio") == ["/m/c.mp4"]
    assert paths("kind=video", "kind=audio") == []  # AND of two values of a one-valued key
    assert store.count(parse_filters(["size>=500", "size<=16033"])) == 2


def test_segments_multivector_and_optional_vectors(store):
    """A multivector scored by MaxSim (the best of an item's segments), read back as rows; a
    collection without the optional ``segments`` vector is still accepted by a schema with it."""
    store.ensure_collection({"content": 3})
    store.ensure_collection({"content": 3, "segments": 3})  # an older collection: accepted, without segments
    assert not store.has_vector("segments")


def test_maxsim_segments_on_every_backend(store):
    store.ensure_collection({"content": 3, "segments": 3})
    assert store.has_vector("segments")
    s = np.sqrt(0.5)
    store.upsert(
        [
            PointRecord(
                point_id("long"),
                {"content": vec(1, 0, 0), "segments": np.array([[1, 0, 0], [0, 0, 1]], np.float32)},
                {},
            ),
            PointRecord(
                point_id("short"), {"content": vec(0, 1, 0), "segments": np.array([[0, s, s]], np.float32)}, {}
            ),
        ]
    )
    hits = store.search(Nearest(vec(0, 0, 1), "segments"), limit=2, with_vectors=["segments"])
    assert [h.id for h in hits] == [point_id("long"), point_id("short")]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[1].score == pytest.approx(s, abs=1e-5)
    assert hits[0].vectors["segments"].shape == (2, 3) and set(hits[0].vectors) == {"segments"}
    (record,) = store.retrieve([point_id("short")], with_vectors=["content"])
    assert set(record.vectors) == {"content"}


def test_a_paused_store_reads_everything_again(store):
    store.ensure_collection(DIMS)
    store.upsert(points())
    store.pause()  # an embedded store closes its shard and lets other processes in
    assert len(list(store.scroll())) == 3
    store.pause()
    assert store.count() == 3 and len(store.retrieve([point_id("a")])) == 1


def test_sparse_vectors_score_by_dot_product_and_can_be_dropped(store):
    store.ensure_collection(DIMS)
    store.upsert(points())
    store.ensure_sparse("ease")
    store.ensure_sparse("ease")  # idempotent
    assert "ease" in store.sparse_names() and store.has_vector("ease")
    a, b, c = point_id("a"), point_id("b"), point_id("c")
    store.update_vectors({a: {"ease": Sparse.of([1, 5], [0.5, -0.25])}, b: {"ease": Sparse.of([2], [1.0])}})
    query = SparseNearest(Sparse.of([5, 1, 2], [1.0, 2.0, 0.5]), "ease")
    hits = store.search(query, limit=5)
    # Only points that share a dimension with the query are scored: a = 2*0.5 - 0.25, b = 0.5.
    assert [h.id for h in hits] == [a, b] and np.allclose([h.score for h in hits], [0.75, 0.5])
    assert [h.id for h in store.search(query, limit=5, exclude_ids=[a])] == [b]
    assert [h.id for h in store.search(query, limit=5, filter={"kind": "audio"})] == [b]
    # A plain vector read leaves sparse vectors out (callers handle dense arrays); naming one returns it.
    record = store.retrieve([a], with_vectors=True)[0]
    assert "ease" not in record.vectors and "content" in record.vectors
    assert store.retrieve([a], with_vectors=["ease"])[0].vectors["ease"] == Sparse.of([1, 5], [0.5, -0.25])
    store.delete_vectors([a], ["ease"])
    assert [h.id for h in store.search(query, limit=5)] == [b]
    assert store.retrieve([a], with_vectors=["content"])[0].vectors["content"].shape == (11,)  # the point stays
    assert store.count() == 3 and c in {r.id for r in store.scroll()}


def test_diversity_re_ranks_by_maximal_marginal_relevance_on_every_backend(store):
    """Five near-copies of one vector and fifteen others: the nearest five are the copies; with
    diversity the engine trades similarity to the query against similarity to what it chose."""
    store.ensure_collection({"visual": 4})
    rng = np.random.default_rng(0)
    base = rng.normal(size=4)
    vectors = [base + 0.01 * rng.normal(size=4) if i < 5 else rng.normal(size=4) for i in range(20)]
    store.upsert(
        [PointRecord(point_id(f"p{i}"), {"visual": v / np.linalg.norm(v)}, {"n": i}) for i, v in enumerate(vectors)]
    )
    plain = store.search(Nearest(base, "visual"), limit=5)
    assert sorted(h.payload["n"] for h in plain) == [0, 1, 2, 3, 4]
    diverse = store.search(Nearest(base, "visual", diversity=0.7, candidates=20), limit=5)
    copies = [h.payload["n"] for h in diverse if h.payload["n"] < 5]
    assert diverse[0].id == plain[0].id and len(copies) == 1  # the best copy, then four others
