"""Re-embedding: staleness per cause, blue-green switch, atomicity, kill and resume, the lock."""

import json
import os
import shutil
import threading

import numpy as np
import pytest

from embedder.engine.ingest import run_ingest
from embedder.engine.reembed import find_stale, run_reembed
from embedder.errors import EmbedderError
from embedder.jobs_lock import job_lock
from embedder.progress import Progress
from embedder.settings import load_settings
from embedder.store import open_store
from embedder.store.catalog import EdgeCatalog


@pytest.fixture
def lib(tmp_path, media):
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("h264.mp4", "tone.mp3", "vp9.webm", "hevc.mp4", "tone.ogg"):
        shutil.copy(media[name], folder / name)
    return folder


def settings_for(tmp_path, **kw):
    return load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=2, max_frames=2, **kw)


@pytest.fixture
def ingested(lib, tmp_path):
    s = settings_for(tmp_path)
    run_ingest([lib], s)
    return s


def causes(settings, head=None):
    with open_store(settings) as store:
        plan = find_stale(store, settings, head)
    return {os.path.basename(i.path): i.causes for i in plan.stale}


def test_nothing_is_stale_right_after_ingest(ingested):
    assert causes(ingested) == {}


def test_model_change_is_stale_per_modality(ingested, tmp_path):
    got = causes(settings_for(tmp_path, clap_model="tiny-clap-b"))
    assert got == {
        "h264.mp4": ["model:audio"],
        "tone.mp3": ["model:audio"],
        "vp9.webm": ["model:audio"],
        "tone.ogg": ["model:audio"],
    }  # hevc.mp4 has no audio: nothing to redo
    got = causes(settings_for(tmp_path, clip_model="tiny-clip-b"))
    assert got["hevc.mp4"] == ["model:visual", "model:text"] and got["tone.mp3"] == ["model:text"]


def test_fusion_change_is_stale(ingested, tmp_path):
    got = causes(settings_for(tmp_path, weight_audio=0.6))
    # hevc.mp4 has no audio: its renormalised weights (visual 5/7, text 2/7) did not change
    assert set(got) == {"h264.mp4", "tone.mp3", "vp9.webm", "tone.ogg"}
    assert all(c == ["fusion"] for c in got.values())


def test_content_change_and_gone_file(ingested, lib, media):
    shutil.copy(media["av1.mkv"], lib / "hevc.mp4")
    (lib / "tone.ogg").unlink()
    assert causes(ingested) == {"hevc.mp4": ["content"], "tone.ogg": ["gone"]}
    report = run_reembed(ingested)
    assert report["ingest"]["counts"]["updated"] == 1 and report["ingest"]["counts"]["removed"] == 1
    assert "rebuild" not in report
    assert causes(ingested) == {}


def test_head_change_and_items_added_after_training_are_stale(ingested):
    with open_store(ingested) as store:
        ids = [r.id for r in store.scroll()]
        store.set_payload(ids[:3], {"rec_model": "two-tower-v2@new"})
        store.set_payload(ids[3:4], {"rec_model": "two-tower-v1@old"})  # an older head made this one
    got = causes(ingested, head="two-tower-v2@new")
    assert sorted(got.values()) == [["head"], ["head"]]  # the old one, and the one without any
    assert causes(ingested) == {}  # no head trained: nothing to say


def test_blue_green_rebuild_reuses_unchanged_vectors_and_switches(ingested, tmp_path):
    from embedder.recommend.interactions import Interaction
    from embedder.recommend.itemitem import ItemItemParams, fit_item_item
    from embedder.recommend.sparse import write_item_item

    with open_store(ingested) as store:
        before = {r.id: r for r in store.scroll(with_vectors=True)}
        # An item-to-item model over the media (and one item known only from interactions).
        events = [Interaction(f"u{u}", pid, 1.0) for u in range(4) for pid in sorted(before)[u : u + 3]]
        write_item_item(fit_item_item(events + [Interaction("u0", "extra", 1.0)], ItemItemParams("ease")), store)
        ease_before = {r.id: r.vectors["ease"] for r in store.scroll(with_vectors=["ease"]) if "ease" in r.vectors}
    assert len(ease_before) == 6
    new_settings = settings_for(tmp_path, clap_model="tiny-clap-b")
    report = run_reembed(new_settings)
    assert report["rebuild"]["switched"] and report["rebuild"]["target"] == "media_v2"
    assert report["rebuild"]["previous"] == "media_v1" and report["rebuild"]["rebuilt"] == 5
    catalog = EdgeCatalog(new_settings.store)
    assert catalog.aliases() == {"media": "media_v2"} and catalog.collections() == ["media_v1", "media_v2"]
    with open_store(new_settings) as store:
        after = {r.id: r for r in store.scroll(with_vectors=True)}
    assert after.keys() == before.keys() | {next(i for i in ease_before if i not in before)}
    with open_store(new_settings) as store:
        assert {r.id: r.vectors["ease"] for r in store.scroll(with_vectors=["ease"])} == ease_before  # carried over
    for pid, rec in ((p, r) for p, r in after.items() if p in before):
        old = before[pid]
        np.testing.assert_array_equal(
            rec.vectors["visual"] if "visual" in rec.vectors else 0,
            old.vectors["visual"] if "visual" in old.vectors else 0,
        )  # reused
        np.testing.assert_array_equal(rec.vectors["text"], old.vectors["text"])
        if "audio" in old.vectors:
            assert not np.allclose(rec.vectors["audio"], old.vectors["audio"])  # re-encoded by the new model
            assert rec.payload["models"]["audio"] == "clap:ClapModel/random@1b"
    assert causes(new_settings) == {}
    # the old version is kept: roll back by moving the alias
    catalog.switch_alias("media", "media_v1")
    assert causes(new_settings) != {}


def test_queries_during_a_rebuild_see_one_version_never_a_mixture(ingested, tmp_path):
    new_settings = settings_for(tmp_path, clap_model="tiny-clap-b")
    seen, errors = [], []
    done = threading.Event()

    def query_loop():
        while not done.is_set():
            try:
                with open_store(new_settings) as store:
                    versions = {
                        r.payload["models"].get("audio") for r in store.scroll() if "audio" in r.payload["modalities"]
                    }
                seen.append(frozenset(versions))
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                errors.append(exc)
            done.wait(0.05)  # a search every 50 ms, like a busy front end

    thread = threading.Thread(target=query_loop)
    thread.start()
    try:
        run_reembed(new_settings)
        done.wait(0.3)  # let a few reads happen after the switch
    finally:
        done.set()
        thread.join(30)
    assert not errors
    assert len(seen) >= 2
    assert all(len(v) == 1 for v in seen), seen  # every read saw one model version only
    assert seen[0] == {"clap:ClapModel/random@1"} and seen[-1] == {"clap:ClapModel/random@1b"}


class KilledAfter(Progress):
    """Interrupts the run (as Ctrl-C would) once ``n`` items have been written."""

    def __init__(self, n: int):
        self.n = n

    def advance(self, path: str, status: str) -> None:
        if status in ("rebuilt", "copied"):
            self.n -= 1
            if self.n == 0:
                raise KeyboardInterrupt


def test_killed_rebuild_resumes_without_duplicates_or_losses(ingested, tmp_path, monkeypatch):
    from embedder.engine import reembed

    monkeypatch.setattr(reembed, "REBUILD_PAGE", 2)  # pages of two: the kill falls after the first
    new_settings = settings_for(tmp_path, clap_model="tiny-clap-b")
    with pytest.raises(KeyboardInterrupt):
        run_reembed(new_settings, progress=KilledAfter(2))
    catalog = EdgeCatalog(new_settings.store)
    assert catalog.aliases() == {"media": "media_v1"}  # not switched: searches still use v1
    report = run_reembed(new_settings)
    assert report["rebuild"]["target"] == "media_v2" and report["rebuild"]["rebuilt"] == 3  # only the rest
    with open_store(new_settings) as store:
        assert store.count() == 5
        assert {r.payload["models"].get("audio") for r in store.scroll() if "audio" in r.payload["modalities"]} == {
            "clap:ClapModel/random@1b"
        }


def test_one_job_at_a_time(ingested, lib):
    with job_lock(ingested, "ingest"):
        with pytest.raises(
            EmbedderError, match=r"cannot start reembed: ingest \(pid \d+\) is running on collection 'media'"
        ):
            run_reembed(ingested)
        with pytest.raises(EmbedderError, match="cannot start ingest: ingest"):
            run_ingest([lib], ingested)


def test_dry_run_changes_nothing(ingested, tmp_path):
    report = run_reembed(settings_for(tmp_path, weight_text=0.9), dry_run=True)
    assert report["stale"] == 5 and report["causes"] == {"fusion": 5} and report["rebuild_collection"]
    assert EdgeCatalog(ingested.store).collections() == ["media_v1"]
    assert json.dumps(report)  # serialisable for --json


def test_sigkill_mid_rebuild_then_rerun_finishes(ingested, tmp_path):
    """A real kill (SIGKILL, no cleanup) of the CLI process, then a second run."""
    import signal
    import subprocess
    import sys
    import time

    env = {
        **os.environ,
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_STORE": ingested.store,
        "EMBEDDER_CLAP_MODEL": "tiny-clap-b",
        "EMBEDDER_MAX_FRAMES": "2",
        "EMBEDDER_WORKERS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "embedder.cli", "reembed"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # plain progress lines: "[1/5] rebuilt: ..."
        if line.startswith("[1/5] rebuilt") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    catalog = EdgeCatalog(ingested.store)
    assert catalog.aliases() == {"media": "media_v1"}
    rerun = subprocess.run(
        [sys.executable, "-m", "embedder.cli", "reembed", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["rebuild"]["target"] == "media_v2" and report["rebuild"]["switched"]
    assert report["rebuild"]["rebuilt"] <= 4  # at least the first item was kept from the killed run
    assert catalog.aliases() == {"media": "media_v2"}
    new = load_settings(models="tiny", store=ingested.store, clap_model="tiny-clap-b")
    with open_store(new) as store:
        assert store.count() == 5
    assert causes(new) == {}


def test_dropping_an_old_version_drops_its_trash(ingested, lib, tmp_path):
    import subprocess
    import sys

    (lib / "tone.ogg").unlink()
    run_ingest([lib], ingested)  # 1 of 5 removed: into media_v1_trash
    run_reembed(settings_for(tmp_path, clap_model="tiny-clap-b"))
    catalog = EdgeCatalog(ingested.store)
    assert catalog.collections() == ["media_v1", "media_v1_trash", "media_v2"]
    proc = subprocess.run(
        [sys.executable, "-m", "embedder.cli", "--store", ingested.store, "collections", "drop", "media_v1", "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["dropped", "media_v1", "dropped", "media_v1_trash"]
    assert catalog.collections() == ["media_v2"]
