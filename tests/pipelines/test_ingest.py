"""Ingest and search end to end with the tiny preset on real decoded media."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from embedder.encoders.bundle import load_encoders
from embedder.engine.ingest import run_ingest
from embedder.search import search_like, search_text
from embedder.settings import load_settings
from embedder.store import open_store, point_id
from embedder.store.status import collection_status


@pytest.fixture(scope="module")
def encoders():
    return load_encoders(load_settings(models="tiny", device="cpu"))


@pytest.fixture
def library(tmp_path, media, real_media):
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    for name in ("h264.mp4", "tone.mp3", "av1.mkv", "truncated.mp4"):
        shutil.copy(media[name], lib / name)
    shutil.copy(media["video_only.mp4"], lib / "sub" / "silent.mp4")
    shutil.copy(real_media / "nasa_13013.mp4", lib / "nasa.mp4")
    (lib / "h264.json").write_text(json.dumps({"title": "test pattern with a beep"}))
    return lib


@pytest.fixture
def settings(tmp_path):
    return load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=2, max_frames=4)


def ingest(lib, settings, encoders, **kw):
    return run_ingest([lib], settings, encoders=encoders, **kw).to_dict()


def test_ingest_reingest_modify_delete(library, settings, encoders, media):
    first = ingest(library, settings, encoders)
    assert first["counts"] == {
        "new": 5,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
        "restored": 0,
        "held_back": 0,
        "failed": 1,
        "skipped": 1,
    }
    assert first["failed"] == [
        {"path": str(library / "truncated.mp4"), "stage": "probe", "reason": "Invalid data found when processing input"}
    ]
    assert first["skipped"] == [
        {"path": str(library / "h264.json"), "reason": "sidecar text (read with its media file)"}
    ]
    timings = first["timings"]
    assert set(timings) == {
        "wait_for_decode_s",
        "encode_s",
        "write_s",
        "wait_for_write_s",
        "run_s",
        "frames",
        "audio_windows",
        "frames_per_s",
        "audio_windows_per_s",
        "encoder_wait_share",
    }
    assert timings["encode_s"] > 0 and timings["write_s"] > 0
    assert timings["frames_per_s"] == round(timings["frames"] / timings["run_s"], 2)
    assert 0 < timings["encoder_wait_share"] <= 1

    with open_store(settings) as store:
        assert store.count() == 5
        stored = [r.payload for r in store.scroll()]
        # what the encoders were given is what was stored: every frame, every window
        assert timings["frames"] == sum(len(p["frames"]) for p in stored) > 0
        assert timings["audio_windows"] == sum(p["audio_windows"] for p in stored) > 0
        rec = store.retrieve(
            [point_id(__import__("hashlib").sha256((library / "h264.mp4").read_bytes()).hexdigest())], with_vectors=True
        )[0]
        assert rec.payload["text"] == "test pattern with a beep" and rec.payload["text_source"] == "sidecar-json"
        assert rec.payload["modalities"] == ["visual", "audio", "text"]
        assert rec.payload["models"]["visual"] == "open_clip:embedder-tiny-clip/random@1"
        assert rec.payload["frames"] == pytest.approx([0.5, 1.5, 2.5], abs=0.06)
        assert set(rec.vectors) == {"visual", "audio", "text", "content", "segments"}
        # A 3 s clip is one moment: its segment vector is the item's content vector.
        assert rec.payload["segments"] == [{"start": 0.0, "end": pytest.approx(3.0, abs=0.1)}]
        assert rec.vectors["segments"].shape == (1, rec.vectors["content"].shape[0])
        assert np.allclose(rec.vectors["segments"][0], rec.vectors["content"], atol=1e-5)
        silent = list(store.scroll({"paths": str(library / "sub" / "silent.mp4")}, with_vectors=True))[0]
        assert silent.payload["modalities"] == ["visual", "text"] and "audio" not in silent.vectors

    again = ingest(library, settings, encoders)
    assert again["counts"] == {
        "new": 0,
        "updated": 0,
        "unchanged": 5,
        "removed": 0,
        "restored": 0,
        "held_back": 0,
        "failed": 1,
        "skipped": 1,
    }
    assert again["timings"] == {}  # nothing decoded or encoded: the broken file is remembered by its hash
    assert again["failed"][0]["reason"].startswith("Invalid data found when processing input (failed on ")

    shutil.copy(media["hevc.mp4"], library / "h264.mp4")  # same path, new content
    (library / "tone.mp3").unlink()
    dry = ingest(library, settings, encoders, dry_run=True)
    assert (dry["counts"]["updated"], dry["counts"]["removed"], dry["dry_run"]) == (1, 1, True)
    with open_store(settings) as store:
        assert store.count() == 5  # a dry run writes nothing

    changed = ingest(library, settings, encoders)
    assert changed["updated"] == [str(library / "h264.mp4")]
    assert changed["removed"] == [str(library / "tone.mp3")]
    assert changed["counts"]["unchanged"] == 3
    with open_store(settings) as store:
        assert store.count() == 4
        holders = list(store.scroll({"paths": str(library / "h264.mp4")}))
        assert (
            len(holders) == 1
            and holders[0].payload["sha256"] == __import__("hashlib").sha256(media["hevc.mp4"].read_bytes()).hexdigest()
        )


def test_failed_update_keeps_the_old_point(library, settings, encoders, media):
    ingest(library, settings, encoders)
    shutil.copy(media["truncated_faststart.mp4"], library / "h264.mp4")  # now undecodable
    out = ingest(library, settings, encoders)
    assert [f["path"] for f in out["failed"]] == [str(library / "h264.mp4"), str(library / "truncated.mp4")]
    with open_store(settings) as store:
        assert store.count() == 5  # the old vectors still serve the path until a good version arrives
        assert len(list(store.scroll({"paths": str(library / "h264.mp4")}))) == 1


def test_duplicate_content_links_paths_without_reencoding(library, settings, encoders):
    shutil.copy(library / "nasa.mp4", library / "sub" / "nasa_copy.mp4")
    out = ingest(library, settings, encoders)
    assert out["counts"]["new"] == 6
    with open_store(settings) as store:
        assert store.count() == 5
        rec = list(store.scroll({"paths": str(library / "sub" / "nasa_copy.mp4")}))[0]
        assert sorted(rec.payload["paths"]) == [str(library / "nasa.mp4"), str(library / "sub" / "nasa_copy.mp4")]
    (library / "nasa.mp4").unlink()
    out = ingest(library, settings, encoders)
    assert out["removed"] == [str(library / "nasa.mp4")]
    with open_store(settings) as store:
        assert store.count() == 5
        rec = list(store.scroll({"paths": str(library / "sub" / "nasa_copy.mp4")}))[0]
        assert rec.payload["paths"] == [str(library / "sub" / "nasa_copy.mp4")]


def test_search_like_finds_itself_first_and_text_search_explains(library, settings, encoders):
    ingest(library, settings, encoders)
    with open_store(settings) as store:
        for name in ("nasa.mp4", "tone.mp3", "sub/silent.mp4"):
            hits = search_like(store, str(library / name), settings, encoders=encoders, limit=3, include_self=True)
            assert hits[0].path == str(library / name)
            assert hits[0].score == pytest.approx(1.0, abs=1e-4)
            assert all(v == pytest.approx(1.0, abs=1e-4) for v in hits[0].scores.values())
        by_id = search_like(store, hits[0].id, settings, encoders=encoders, limit=1, include_self=True)
        assert by_id[0].id == hits[0].id
        others = search_like(store, hits[0].id, settings, encoders=encoders, limit=10)  # as 'similar' does
        assert hits[0].id not in {h.id for h in others} and len(others) == 4
        hits = search_text(store, encoders, "test pattern", weights=settings.fusion_weights, limit=10, mode="dense")
        assert len(hits) == 5 and hits == sorted(hits, key=lambda h: -h.score)
        for h in hits:  # the fused score is the weighted sum of the explained per-modality cosines
            rec = store.retrieve([h.id])[0]
            w = rec.payload["fusion"]["weights"]
            base = settings.fusion_weights
            expected = sum(np.sqrt(w[m] * base[m]) * s for m, s in h.scores.items())
            assert h.score == pytest.approx(expected, abs=1e-4)
        audio_only = search_text(store, encoders, "beep", weights=settings.fusion_weights, modality="audio")
        assert {h.path for h in audio_only} == {str(library / n) for n in ("h264.mp4", "tone.mp3", "nasa.mp4")}
        videos = search_text(store, encoders, "x", weights=settings.fusion_weights, filters={"kind": "audio"})
        assert [h.path for h in videos] == [str(library / "tone.mp3")]
        status = collection_status(store)
        assert status["points"] == 5 and status["modalities"] == {"visual": 4, "audio": 3, "text": 5}
        assert status["kinds"] == {"video": 4, "audio": 1, "item": 0}


def test_like_a_new_file_encodes_it_on_the_fly(library, settings, encoders, media):
    ingest(library, settings, encoders)
    with open_store(settings) as store:
        hits = search_like(store, str(media["h264.mp4"]), settings, encoders=encoders, limit=2, include_self=True)
        assert hits[0].path == str(library / "h264.mp4")  # identical content is already stored
        hits = search_like(store, str(media["tone.wav"]), settings, encoders=encoders, limit=2)
        assert hits[0].path == str(library / "tone.mp3")  # same 440 Hz tone, different codec
        assert hits[0].scores["audio"] > 0.99


def test_cli_ingest_search_status_json(library, tmp_path):
    env = {
        **os.environ,
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_STORE": str(tmp_path / "cli-store"),
        "EMBEDDER_MAX_FRAMES": "4",
    }

    def cli(*args, code=0):
        proc = subprocess.run(
            [sys.executable, "-m", "embedder.cli", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
        return proc

    summary = json.loads(cli("ingest", library, "--json").stdout)
    assert summary["counts"]["new"] == 5 and summary["counts"]["failed"] == 1
    assert set(summary) >= {
        "counts",
        "new",
        "updated",
        "removed",
        "failed",
        "skipped",
        "elapsed_s",
        "files_per_s",
        "store",
    }
    result = json.loads(cli("search", "a beep", "--json", "--limit", "3").stdout)
    assert result["query"] == "a beep" and len(result["hits"]) == 3
    assert set(result["hits"][0]) == {
        "id",
        "path",
        "score",
        "scores",
        "kind",
        "text",
        "contributions",
        "moment",
        "personal",
        "item",
        "title",
        "cluster",
        "mode",
        "matches",
        "sides",
    }
    top = result["hits"][0]
    assert top["moment"] is None and top["personal"] is None and result["mode"] == top["mode"] == "hybrid"
    # the modalities explain the dense side; the dense and lexical shares add up to the fused score
    assert sum(top["contributions"].values()) == pytest.approx(top["sides"]["dense"], abs=1e-5)
    assert sum(top["sides"]["fused"].values()) == pytest.approx(top["score"], abs=2e-6)
    like = json.loads(cli("search", "--like", library / "av1.mkv", "--json", "--include-self").stdout)
    assert like["hits"][0]["path"] == str(library / "av1.mkv")
    assert str(library / "av1.mkv") not in {
        h["path"] for h in json.loads(cli("search", "--like", library / "av1.mkv", "--json").stdout)["hits"]
    }
    strict = json.loads(
        cli("search", "--like", library / "av1.mkv", "--json", "--include-self", "--min-score", "0.9999").stdout
    )
    assert [h["path"] for h in strict["hits"]] == [str(library / "av1.mkv")] and strict["min_score"] == 0.9999
    status = json.loads(cli("status", "--json").stdout)
    assert (status["backend"], status["points"]) == ("edge", 5)
    assert status["models"]["audio"] == ["clap:ClapModel/random@1"]
    plain = cli("ingest", library).stdout
    assert "0 new, 0 updated, 5 unchanged, 0 removed, 1 failed" in plain
    err = cli("search", "x", "--modality", "smell", code=2).stderr
    assert err.strip() == "error: --modality must be one of all, visual, audio, text, not 'smell'"
    err = cli("ingest", tmp_path / "nope", code=2).stderr
    assert err.strip() == f"error: nothing to ingest: {tmp_path / 'nope'} not found"


def test_a_failure_is_remembered_until_the_file_changes_or_retry(library, settings, media):
    (library / "nasa.mp4").unlink()
    first = run_ingest([library], settings, encoders=None)  # loads the tiny models once
    assert [f.path for f in first.failed] == [str(library / "truncated.mp4")]
    # Unchanged: reported from memory, nothing decoded, no models needed (encoders=None and no load).
    again = run_ingest([library], settings, encoders=None)
    assert again.timings == {} and "--retry-failed" in again.failed[0].reason
    retried = run_ingest([library], settings, encoders=None, retry_failed=True)
    assert (
        retried.timings["wait_for_decode_s"] >= 0
        and retried.failed[0].reason == "Invalid data found when processing input"
    )
    shutil.copy(media["vp9.webm"], library / "truncated.mp4")  # fixed: new content, new hash, tried at once
    fixed = run_ingest([library], settings, encoders=None)
    assert fixed.failed == [] and fixed.updated == [] and fixed.new == [str(library / "truncated.mp4")]
    from embedder.failures import FailureMemory, failures_path

    assert FailureMemory(failures_path(settings)).entries == {}  # the old content's failure is forgotten


def test_a_rollback_then_an_ingest_with_the_newer_models_is_refused_not_mixed(tmp_path, media):
    """The campaign's case: reembed to another CLIP model, roll back, ingest with that model."""
    from tests.cli_runner import run_cli

    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("h264.mp4", "tone.mp3"):
        shutil.copy(media[name], lib / name)
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_WORKERS": "1"}
    newer = {**env, "EMBEDDER_CLIP_MODEL": "tiny-clip-b"}
    run_cli("ingest", lib, env=env)
    run_cli("reembed", env=newer)
    run_cli("collections", "rollback", env=env)
    shutil.copy(media["vp9.webm"], lib / "vp9.webm")
    refused = run_cli("ingest", lib, env=newer, code=2)
    assert "refusing to write text vectors of open_clip:embedder-tiny-clip/random@1b" in refused.stderr
    assert "which holds text vectors of open_clip:embedder-tiny-clip/random@1:" in refused.stderr
    with open_store(load_settings(models="tiny", store=str(tmp_path / "store"))) as store:
        assert store.collection == "media_v1"
        assert collection_status(store)["models"]["visual"] == ["open_clip:embedder-tiny-clip/random@1"]
        assert store.count() == 2  # nothing written
    run_cli("ingest", lib, env=env)  # the collection's own models still write


def test_queries_refuse_another_models_vector_space(library, settings, encoders, media, tmp_path):
    ingest(library, settings, encoders)
    other = settings.model_copy(update={"clip_model": "tiny-clip-b"})  # same size, other weights
    other_encoders = load_encoders(other)
    with open_store(other) as store:
        with pytest.raises(Exception) as err:
            search_text(store, other_encoders, "a beep", weights=other.fusion_weights)
        message = str(err.value)
        assert "holds text vectors of open_clip:embedder-tiny-clip/random@1" in message
        assert "configured model is open_clip:embedder-tiny-clip/random@1b" in message
        with pytest.raises(Exception, match="holds text vectors of"):
            search_like(store, str(media["vp9.webm"]), other, encoders=other_encoders)  # a new file, encoded
        hits = search_like(
            store, str(library / "tone.mp3"), other, limit=1, include_self=True
        )  # stored vectors: no encoder
        assert hits[0].path == str(library / "tone.mp3")
    env = {
        **os.environ,
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_CLIP_MODEL": "tiny-clip-b",
        "EMBEDDER_STORE": settings.store,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "embedder.cli", "search", "a beep"], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 2 and "configured model is open_clip:embedder-tiny-clip/random@1b" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_254_character_file_name_goes_in_with_its_name_as_text(tmp_path, media, encoders):
    """The campaign's case: the sidecar look-up (name + '.json') passes NAME_MAX and failed the file."""
    lib = tmp_path / "lib"
    lib.mkdir()
    name = "a" * 250 + ".mp3"
    shutil.copy(media["tone.mp3"], lib / name)
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1)
    summary = run_ingest([lib], settings, encoders=encoders)
    assert summary.failed == [] and summary.new == [str(lib / name)]
    with open_store(settings) as store:
        [record] = list(store.scroll())
        assert record.payload["text_source"] == "filename" and record.payload["text"].startswith("a" * 200)
