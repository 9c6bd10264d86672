"""Moments: segments at ingest, moment search, personalised search, explanations that add up."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedder.media.segments import SegmentOptions, cue_text, frames_for_segments, segment_spans, windows_for_segments
from embedder.media.text import Cue, parse_cues
from tests.cli_runner import run_cli

CLIP_S = 4.0


# -- pure rules ----------------------------------------------------------------------------------


def test_spans_follow_cuts_and_split_long_shots():
    opts = SegmentOptions(segment_s=10.0)
    # Cuts at 8 and 16; a 40 s last shot is cut into 4 windows of 10 s; a cut 0.5 s before the
    # end is a flash that joins the shot before it.
    spans = segment_spans(56.0, [8.0, 16.0, 55.5], opts)
    assert spans == [(0.0, 8.0), (8.0, 16.0), (16.0, 26.0), (26.0, 36.0), (36.0, 46.0), (46.0, 56.0)]
    assert segment_spans(30.0, [], opts) == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
    # "windows" ignores cuts; too many segments make longer ones, never more than the cap.
    assert segment_spans(30.0, [8.0], SegmentOptions(mode="windows", segment_s=10.0)) == segment_spans(30.0, [], opts)
    capped = segment_spans(3600.0, [], SegmentOptions(segment_s=10.0, max_segments=60))
    assert len(capped) == 60 and capped[0] == (0.0, 60.0) and capped[-1][1] == 3600.0


def test_every_segment_gets_frames_and_audio():
    spans = [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
    groups, extra = frames_for_segments(spans, [2.0, 5.0, 25.0])
    assert groups == [[0, 1], [3], [2]] and extra == [15.0]  # the middle segment had no sample
    groups, extra = windows_for_segments(spans, [0.0], 10.0, 30.0)
    assert groups == [[0], [1], [2]] and extra == [10.0, 20.0]
    # A window mostly outside a segment does not count for it (duration 0: regrouping, no extras).
    groups, extra = windows_for_segments([(0.0, 8.0), (8.0, 16.0)], [0.0, 12.0], 10.0, 0.0)
    assert groups == [[0], []] and extra == []


def test_cues_from_srt_and_webvtt():
    srt = "1\n00:00:01,000 --> 00:00:03,500\n<i>Hello</i> there\nsecond line\n\n2\n00:01:02,250 --> 00:01:04,000\nBye\n"
    assert parse_cues(srt) == [Cue(1.0, 3.5, "Hello there second line"), Cue(62.25, 64.0, "Bye")]
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nShort form\n\n01:00:00.000 --> 01:00:01.000 align:start\nLate\n"
    assert parse_cues(vtt) == [Cue(1.0, 2.0, "Short form"), Cue(3600.0, 3601.0, "Late")]
    assert cue_text(parse_cues(srt), 0.0, 10.0) == "Hello there second line"
    assert cue_text(parse_cues(srt), 10.0, 60.0) == ""


# -- real media ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from embedder.samples import make_moment_world

    return make_moment_world(
        tmp_path_factory.mktemp("moments") / "world", clips=4, per_video=2, clip_s=CLIP_S, size="64x48"
    )


def _library(tmp_path, **overrides):
    from embedder import Library
    from embedder.settings import Settings

    return Library(Settings(store=str(tmp_path / "store"), models="tiny", workers=1, **overrides))


@pytest.fixture(scope="module")
def ingested(world, tmp_path_factory):
    library = _library(tmp_path_factory.mktemp("moments-store"), segment_s=CLIP_S)
    summary = library.ingest([str(world["clips"]["clip00"]["path"]).rsplit("/clips/", 1)[0]])
    assert not summary.failed
    yield library
    library.close()


def test_decode_cuts_at_shots_and_keeps_the_items_samples(world):
    from embedder.media.decode import DecodeOptions, decode_item
    from embedder.media.video import SamplingOptions

    video = world["videos"]["video00"]
    sampling = SamplingOptions(image_size=32, max_frames=3)  # fewer samples than segments: extras are added
    plain = decode_item(video["path"], DecodeOptions(sampling=sampling))
    item = decode_item(video["path"], DecodeOptions(sampling=sampling, segments=SegmentOptions(segment_s=CLIP_S)))
    assert plain.segments is None and plain.frames.item_count is None
    starts = [s.start for s in item.segments]
    assert len(starts) == 2 and starts[0] == 0.0 and abs(starts[1] - CLIP_S) <= 0.3  # the cut between the clips
    # The item's own samples are the same with and without segments; extras come after them.
    assert item.frames.item_count == 3
    assert np.array_equal(item.frames.item_frames, plain.frames.frames)
    assert all(s.frames and s.windows for s in item.segments)
    first, second = video["clips"]
    assert [s.text for s in item.segments] == [world["clips"][first]["line"], world["clips"][second]["line"]]
    assert item.summary()["segments"][1]["subtitle"] == world["clips"][second]["line"]
    assert len(item.segment_thumbnails) == 2 and all(j.startswith(b"\xff\xd8") for j in item.segment_thumbnails)


def test_moment_search_finds_each_clip_inside_its_video(world, ingested):
    for clip in world["clips"].values():
        hits = ingested.search(like=clip["path"], moments=True, limit=8)
        video = world["videos"][clip["video"]]["path"]
        first_video = next(h for h in hits if "/videos/" in h.path)
        assert first_video.path == video
        assert abs(first_video.moment.start - clip["offset"]) <= CLIP_S / 2
        for h in hits:  # MaxSim: the item's score is its best segment's, and the parts add up to it
            assert h.moment is not None and h.moment.score == pytest.approx(h.score, abs=1e-5)
            assert sum(h.contributions.values()) == pytest.approx(h.score, abs=1e-5)


def test_a_new_clip_is_found_inside_its_video(world, ingested, tmp_path):
    """A file that was never ingested (the clip cut again from its video) is encoded on the fly."""
    from embedder.ids import point_id
    from embedder.media.discover import hash_file
    from tests.conftest import ffmpeg

    clip = world["clips"]["clip03"]
    cut = tmp_path / "cut.mp4"
    ffmpeg(
        "-ss",
        str(clip["offset"] + 0.5),
        "-t",
        "3",
        "-i",
        world["videos"][clip["video"]]["path"],
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        str(cut),
    )
    assert ingested.media.retrieve([point_id(hash_file(cut))]) == []  # not ingested
    hits = ingested.search(like=str(cut), moments=True, limit=3)
    assert hits[0].path == clip["path"]  # the clip it was cut like, on its own
    first_video = next(h for h in hits if "/videos/" in h.path)
    assert first_video.path == world["videos"][clip["video"]]["path"]
    assert abs(first_video.moment.start - clip["offset"]) <= CLIP_S / 2


def test_subtitle_line_finds_the_segment_that_shows_it(world, ingested):
    clip = world["clips"]["clip01"]
    top = ingested.search(clip["line"], moments=True, limit=3)[0]
    assert top.path == world["videos"][clip["video"]]["path"]
    assert top.moment.subtitle == clip["line"]
    assert top.moment.start <= clip["offset"] + 0.5 < top.moment.end
    assert top.moment.thumbnail and open(top.moment.thumbnail, "rb").read(2) == b"\xff\xd8"


def test_contributions_add_up_to_the_score(ingested):
    dense = ingested.search("orange light", limit=6, mode="dense")
    like = ingested.search(like=ingested.search("x", limit=1, mode="dense")[0].id)
    for hits in (dense, like):
        for h in hits:
            assert set(h.contributions) <= {"visual", "audio", "text"}
            assert sum(h.contributions.values()) == pytest.approx(h.score, abs=1e-5)
    # Hybrid: the modalities explain the dense side's cosine; the two sides add up to the fused score.
    for h in ingested.search("orange light", limit=6, mode="hybrid"):
        assert h.mode == "hybrid"
        assert sum(h.contributions.values()) == pytest.approx(h.sides["dense"], abs=1e-5)
        assert sum(h.sides["fused"].values()) == pytest.approx(h.score, abs=2e-6)
    visual = ingested.search("orange light", modality="visual", limit=3)
    assert all(h.contributions == {"visual": h.scores["visual"]} for h in visual)


def test_segments_leave_item_vectors_and_plain_search_unchanged(world, ingested, tmp_path):
    plain = _library(tmp_path, segments=False)
    root = str(world["clips"]["clip00"]["path"]).rsplit("/clips/", 1)[0]
    assert not plain.ingest([root]).failed
    with plain:
        ids = sorted(r.id for r in plain.media.scroll())
        with_segments = {
            r.id: r for r in ingested.media.retrieve(ids, with_vectors=["content", "visual", "audio", "text"])
        }
        for record in plain.media.retrieve(ids, with_vectors=True):
            assert "segments" not in record.vectors and "segments" not in record.payload
            for name, vector in record.vectors.items():
                assert np.allclose(vector, with_segments[record.id].vectors[name], atol=1e-5), name
        # Same items, same order, same scores without --moments.
        a = [(h.id, round(h.score, 4)) for h in plain.search("a red fox", limit=8)]
        b = [(h.id, round(h.score, 4)) for h in ingested.search("a red fox", limit=8)]
        assert a == b
        with pytest.raises(Exception, match="no segment vectors.*embedder reembed"):
            plain.search("a red fox", moments=True)


def test_reembed_adds_segments_to_an_old_collection(world, tmp_path):
    root = str(world["clips"]["clip00"]["path"]).rsplit("/clips/", 1)[0]
    old = _library(tmp_path, segments=False)
    assert not old.ingest([root]).failed
    old.close()
    library = _library(tmp_path, segment_s=CLIP_S)
    with library:
        report = library.reembed(dry_run=True)
        assert report["causes"].get("segments") == report["items"] == 6
        report = library.reembed()
        assert report["rebuild"]["switched"] and report["rebuild"]["rebuilt"] == 6
        assert library.reembed(dry_run=True)["stale"] == 0
        clip = world["clips"]["clip03"]
        first_video = next(h for h in library.search(like=clip["path"], moments=True) if "/videos/" in h.path)
        assert first_video.path == world["videos"][clip["video"]]["path"]
        assert abs(first_video.moment.start - clip["offset"]) <= CLIP_S / 2


def test_moments_on_a_qdrant_server_store(world, tmp_path, in_process_server):
    from embedder import Library
    from embedder.settings import Settings

    library = Library(Settings(store=in_process_server, models="tiny", workers=1, segment_s=CLIP_S))
    with library:
        assert not library.ingest([world["videos"]["video01"]["path"]]).failed
        clip = world["clips"][world["videos"]["video01"]["clips"][1]]
        hit = library.search(like=clip["path"], moments=True, limit=1)[0]
        assert hit.path == world["videos"]["video01"]["path"]
        assert abs(hit.moment.start - clip["offset"]) <= CLIP_S / 2


def test_cli_moments_and_explain(world, ingested):
    ingested.media.pause()  # let the command line open the embedded store
    env = {"EMBEDDER_STORE": ingested.settings.store, "EMBEDDER_MODELS": "tiny"}
    clip = world["clips"]["clip02"]
    data = json.loads(run_cli("search", "--like", clip["path"], "--moments", "--json", env=env).stdout)
    first_video = next(h for h in data["hits"] if "/videos/" in h["path"])
    assert first_video["moment"]["start"] == pytest.approx(clip["offset"], abs=CLIP_S / 2)
    assert data["moments"] is True and first_video["contributions"]
    text = run_cli("search", clip["line"], "--moments", "--explain", "-n", "2", env=env).stdout
    header = lambda out: next(line for line in out.splitlines() if "score" in line)  # noqa: E731
    assert "moment" in header(text) and "best moment" in text and f'subtitle "{clip["line"]}"' in text
    plain = run_cli("search", clip["line"], "-n", "2", env=env).stdout
    assert "moment" not in header(plain) and "best moment" not in plain
    missing = run_cli("search", "x", "--moments", "--modality", "visual", env=env, code=2)
    assert "--moments" in missing.stderr and "--modality all" in missing.stderr


# -- personalised search ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_topics(tmp_path_factory):
    """Four red clips with low tones and four blue clips with high tones, named without the topic."""
    from tests.conftest import ffmpeg

    root = tmp_path_factory.mktemp("topics")
    topic = {}
    for t, (colour, tone) in enumerate((("red", 220), ("blue", 1760))):
        for j in range(4):
            path = root / "media" / f"clip_{4 * t + j}.mp4"
            path.parent.mkdir(exist_ok=True)
            ffmpeg(
                "-f",
                "lavfi",
                "-i",
                f"color=c={colour}:size=64x48:rate=5:duration=1.5",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency={tone + 9 * j}:duration=1.5:sample_rate=48000",
                "-vf",
                f"noise=alls={10 + 6 * j}:allf=t",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
                str(path),
            )
            topic[str(path)] = t
    library = _library(root, segments=False, max_frames=2)
    assert not library.ingest([root / "media"]).failed
    yield library, topic
    library.close()


def test_personalised_search_prefers_the_users_topic(two_topics):
    """A user who liked two red clips gets the other red clips first for queries that match both
    topics (plain search mixes them); a user with no history gets plain search exactly."""
    library, topic = two_topics
    red = sorted(p for p, t in topic.items() if t == 0)
    library.add_events([("ann", red[0], 1.0), ("ann", red[1], 2.0)])
    queries = ["something to watch", "a quiet evening", "music", "colours", "a short film", "noise"]
    unseen_red = set(red[2:])

    def red_rank(hits) -> float:  # mean rank of the unseen red clips among the unseen items
        ranks = [r for r, h in enumerate((h for h in hits if h.path not in red[:2]), 1) if h.path in unseen_red]
        return sum(ranks) / len(ranks)

    plain_ranks, mine_ranks = [], []
    for q in queries:
        plain = library.search(q, limit=8)
        mine = library.search(q, limit=8, user="ann", seen="exclude")
        assert len(mine) == 6 and not {h.path for h in mine} & set(red[:2])  # seen, and excluded on request
        plain_ranks.append(red_rank(plain))
        mine_ranks.append(red_rank(mine))
        assert mine_ranks[-1] <= plain_ranks[-1]  # never worse for the user's topic
        for h in mine:  # the documented blend, from the reported parts
            p = h.personal
            assert p["weight"] == library.settings.personal_weight
            assert p["score"] == pytest.approx(h.score + p["weight"] * p["relevance_spread"] * p["taste_z"], abs=1e-5)
            assert p["nearest_liked"]["path"] in red[:2] and p["recent"] == p["nearest_liked"]["similarity"]
        assert [h.personal["score"] for h in mine] == sorted((h.personal["score"] for h in mine), reverse=True)
        nobody = library.search(q, limit=8, user="nobody")
        assert [(h.id, h.score, h.personal) for h in nobody] == [(h.id, h.score, None) for h in plain]
    # Over these queries the user's topic ranks clearly higher than in plain search (1.5 is first and second).
    assert sum(mine_ranks) / len(queries) < sum(plain_ranks) / len(queries) - 0.5, (mine_ranks, plain_ranks)
    demoted = library.search("colours", limit=8, user="ann")
    assert {h.path for h in demoted[-2:]} == set(red[:2]) and all(h.personal["seen"] for h in demoted[-2:])
    kept = library.search("colours", limit=8, user="ann", seen="keep")
    assert {h.path for h in kept[:2]} <= set(red)  # what was liked counts as taste, not as seen


def test_segment_previews_go_with_their_item(tmp_path):
    from embedder.media.thumbnail import ThumbnailStore

    store = ThumbnailStore(tmp_path)
    store.put("item", b"\xff\xd8whole")
    store.put_moments("item", [b"\xff\xd8first", None, b"\xff\xd8third"])
    assert store.get_moment("item", 0).read_bytes() == b"\xff\xd8first"
    assert store.get_moment("item", 1) is None and store.get_moment("item", 2) is not None
    store.put_moments("item", [b"\xff\xd8again"])  # cut again: the old previews are replaced
    assert store.get_moment("item", 2) is None
    assert store.remove(["item"]) == 1
    assert not store.moments_dir("item").exists() and store.get("item") is None
