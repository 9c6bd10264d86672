"""Near-duplicates from the per-segment vectors: re-encoded, scaled, trimmed and watermarked copies
of real (generated) clips cluster with their original and not with other clips; search can show
each cluster once."""

from __future__ import annotations

import json
import re

import pytest

from embedder import Library
from embedder.duplicates import DUPLICATE_OF, find_duplicates, mark_duplicates
from embedder.settings import load_settings
from tests.cli_runner import run_cli
from tests.conftest import ffmpeg

SOURCES = ("testsrc2", "mandelbrot", "smptebars")
THRESHOLD = 0.995  # random tiny weights put every similarity near 1 (benchmarks/search/duplicates.py)


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("duplicates") / "media"
    folder.mkdir()
    for i, source in enumerate(SOURCES, 1):
        original = folder / f"clip{i}.mp4"
        ffmpeg(
            "-f", "lavfi", "-i", f"{source}=size=192x144:rate=10",
            "-f", "lavfi", "-i", f"sine=frequency={300 * i}:sample_rate=44100",
            "-t", "6", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(original),
        )  # fmt: skip
        ffmpeg("-i", str(original), "-c:v", "libx264", "-crf", "38", "-c:a", "aac", str(folder / f"clip{i}_reenc.mp4"))
        ffmpeg("-i", str(original), "-vf", "scale=96:72", "-c:a", "copy", str(folder / f"clip{i}_scaled.mp4"))
        ffmpeg(
            "-ss",
            "1.5",
            "-t",
            "4",
            "-i",
            str(original),
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            str(folder / f"clip{i}_trim.mp4"),
        )
        ffmpeg(
            "-i", str(original), "-vf", "drawbox=x=8:y=8:w=50:h=20:color=white@0.8:t=fill", "-c:a", "copy",
            str(folder / f"clip{i}_mark.mp4"),
        )  # fmt: skip
    settings = load_settings(store=str(folder.parent / "store"), models="tiny", device="cpu", workers=1)
    library = Library.open(settings)
    assert not library.ingest([str(folder)]).failed
    yield library, folder
    library.close()


def _group(path: str) -> str:
    return re.search(r"clip(\d)", path).group(1)


def test_copies_cluster_with_their_original_and_nothing_else(copies):
    library, _ = copies
    clusters = find_duplicates(library.media, THRESHOLD)
    assert len(clusters) == len(SOURCES)
    for cluster in clusters:
        paths = [m["path"] for m in cluster.members]
        assert len(paths) == 5 and len({_group(p) for p in paths}) == 1
        keep = next(m for m in cluster.members if m["id"] == cluster.representative)
        assert not re.search(r"_(trim)\.mp4$", keep["path"])  # the longest copy is kept, never the trimmed one
        assert all(THRESHOLD <= m["score"] <= 1.0 + 1e-6 for m in cluster.members)
    assert find_duplicates(library.media, 1.0 + 1e-6) == []  # nothing is that alike


def test_marked_clusters_collapse_in_search_and_clear_when_unmarked(copies):
    library, _ = copies
    clusters = find_duplicates(library.media, THRESHOLD)
    assert mark_duplicates(library.media, clusters) == 4 * len(SOURCES)
    hits = library.search("a test pattern", mode="dense", limit=15)
    assert len(hits) == 15
    collapsed = library.search("a test pattern", mode="dense", limit=15, collapse_duplicates=True)
    assert len(collapsed) == len(SOURCES) and len({_group(h.path) for h in collapsed}) == len(SOURCES)
    assert collapsed[0].id == hits[0].id  # each cluster at its best-ranked member's place
    marked = [r for r in library.media.scroll() if r.payload.get(DUPLICATE_OF)]
    assert len(marked) == 4 * len(SOURCES)
    assert mark_duplicates(library.media, []) == 0  # no clusters any more: the marks go
    assert not [r for r in library.media.scroll() if r.payload.get(DUPLICATE_OF)]


def test_diversity_spreads_the_top_over_distinct_clips(copies):
    from embedder.errors import EmbedderError

    library, _ = copies
    plain = library.search("a test pattern", mode="dense", limit=3)
    diverse = library.search("a test pattern", limit=3, diversity=0.9)
    assert len({_group(h.path) for h in plain}) < len({_group(h.path) for h in diverse}) == len(SOURCES)
    assert diverse[0].id == plain[0].id and all(h.mode == "dense" for h in diverse)
    for hit in diverse:  # the score shown is the relevance (the cosine), not the MMR trade-off
        assert hit.score == pytest.approx(sum(hit.contributions.values()), abs=1e-5)
    for kwargs, message in (
        ({"mode": "hybrid"}, "use it with --mode dense"),
        ({"moments": True}, "does not combine with --moments"),
    ):
        with pytest.raises(EmbedderError, match=message):
            library.search("a test pattern", diversity=0.5, **kwargs)
    with pytest.raises(EmbedderError, match="not with --like"):
        library.search(like=plain[0].id, diversity=0.5)


def test_the_duplicates_command(copies):
    library, folder = copies
    library.media.pause()
    env = {"EMBEDDER_STORE": library.settings.store, "EMBEDDER_MODELS": "tiny"}
    data = json.loads(run_cli("duplicates", "--threshold", str(THRESHOLD), "--json", "-q", env=env).stdout)
    assert data["threshold"] == THRESHOLD and len(data["clusters"]) == len(SOURCES) and data["marked"] is None
    shown = run_cli("duplicates", "--threshold", str(THRESHOLD), "-q", env=env).stdout
    assert shown.count("cluster ") == len(SOURCES) and shown.count("keep ") == len(SOURCES)
    bad = run_cli("duplicates", "--threshold", "2", env=env, code=64).stderr
    assert "threshold" in bad.lower()


def test_similar_and_recommend_show_each_cluster_once_and_no_copy_of_what_they_start_from(copies):
    library, folder = copies
    mark_duplicates(library.media, find_duplicates(library.media, THRESHOLD))
    try:
        original = next(r for r in library.media.scroll() if r.payload["path"].endswith("clip1.mp4"))
        plain = library.similar(original.id, limit=6)
        assert {_group(r.path) for r in plain[:4]} == {"1"}  # its own copies are the most alike of all
        collapsed = library.similar(original.id, limit=6, collapse_duplicates=True)
        assert sorted(_group(r.path) for r in collapsed) == ["2", "3"]
        for rec in collapsed:  # a copy names the item it copies, from the same clip
            if rec.cluster is not None:
                assert _group(library.media.retrieve([rec.cluster])[0].payload["path"]) == _group(rec.path)
        like = library.search(like=original.id, limit=6, collapse_duplicates=True)
        assert sorted(_group(h.path) for h in like) == ["2", "3"]

        copy = next(r for r in library.media.scroll() if r.payload["path"].endswith("clip2_scaled.mp4"))
        library.add_events([("viewer", copy.id, 1.0)])
        seen_copies = library.recommend("viewer", strategy="content", limit=6)
        assert copy.id not in {r.id for r in seen_copies.items}
        assert "2" in {_group(r.path) for r in seen_copies.items}  # other copies of what they saw
        result = library.recommend("viewer", strategy="content", limit=6, collapse_duplicates=True)
        assert sorted(_group(r.path) for r in result.items) == ["1", "3"]
        assert result.items[0].branches == ["content"]

        library.media.pause()  # the CLI opens the store itself
        library.users.pause()
        env = {"EMBEDDER_STORE": library.settings.store, "EMBEDDER_MODELS": "tiny"}
        data = json.loads(run_cli("similar", original.id, "--collapse-duplicates", "--json", env=env).stdout)
        assert sorted(_group(r["path"]) for r in data["items"]) == ["2", "3"]
        args = ("recommend", "--user", "viewer", "--strategy", "content", "--collapse-duplicates", "--json")
        data = json.loads(run_cli(*args, env=env).stdout)
        assert sorted(_group(r["path"]) for r in data["items"]) == ["1", "3"]
    finally:
        mark_duplicates(library.media, [])
