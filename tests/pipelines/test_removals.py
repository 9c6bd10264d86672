"""Removals never happen by accident: the guard, --prune/--no-delete, and the trash."""

import json
import os
import shutil

import numpy as np
import pytest

from embedder.encoders.bundle import load_encoders
from embedder.engine.ingest import run_ingest
from embedder.settings import load_settings
from embedder.store import open_store
from embedder.trash import Trash
from tests.cli_runner import run_cli
from tests.conftest import copy_media

NAMES = ("h264.mp4", "hevc.mp4", "vp9.webm", "tone.mp3")


@pytest.fixture(scope="module")
def encoders():
    return load_encoders(load_settings(models="tiny", device="cpu"))


@pytest.fixture
def library(tmp_path, media):
    return copy_media(media, NAMES, tmp_path / "share")


@pytest.fixture(params=["edge", "server"])
def env(request, tmp_path):
    """Settings on an embedded store, or on qdrant-client's in-process engine behind a URL."""
    store = request.getfixturevalue("in_process_server") if request.param == "server" else str(tmp_path / "store")
    settings = load_settings(models="tiny", device="cpu", store=store, workers=1, max_frames=2)
    return settings


def ingest(lib, settings, encoders=None, **kw):
    return run_ingest([lib], settings, encoders=encoders, **kw)


def count(settings):
    with open_store(settings) as store:
        return store.count()


def test_an_emptied_folder_removes_nothing_until_prune_and_prune_is_undone_by_the_trash(
    library, env, encoders, tmp_path
):
    settings = env
    assert ingest(library, settings, encoders).to_dict()["counts"]["new"] == 4
    with open_store(settings) as store:  # collaborative vectors a re-encode could not rebuild
        ids = sorted(r.id for r in store.scroll())
        cf = np.arange(settings.cf_factors, dtype=np.float32) / 100
        store.update_vectors({ids[0]: {"cf": cf}})

    away = tmp_path / "away"
    shutil.move(str(library), away)  # the share is unmounted: the mount point is an empty folder
    library.mkdir()
    held = ingest(library, settings, encoders)
    assert held.removals_held_back and held.removed == []
    [h] = held.held_back
    assert (h.root, len(h.paths), h.stored, h.guard) == (str(library), 4, 4, True)
    assert "no media files" in h.reason
    assert count(settings) == 4

    kept = ingest(library, settings, encoders, removals="never")
    assert not kept.removals_held_back and [x.guard for x in kept.held_back] == [False]
    assert count(settings) == 4

    pruned = ingest(library, settings, encoders, removals="prune")
    assert sorted(pruned.removed) == sorted(str(library / n) for n in NAMES)
    assert pruned.trash["moved"] == 4 and count(settings) == 0
    with open_store(settings) as store, Trash(settings, store) as trash:
        entries = trash.entries()
        assert sorted(e.id for e in entries) == ids and {e.reason for e in entries} == {"file removed"}

    library.rmdir()
    shutil.move(str(away), library)  # the share is back: nothing is decoded or encoded again
    back = ingest(library, settings, encoders=None)
    assert sorted(back.restored) == sorted(str(library / n) for n in NAMES)
    assert back.new == [] and back.timings == {}
    with open_store(settings) as store, Trash(settings, store) as trash:
        assert sorted(r.id for r in store.scroll()) == ids
        restored = store.retrieve([ids[0]], with_vectors=True)[0]
        np.testing.assert_allclose(restored.vectors["cf"], cf, rtol=1e-6)
        assert "trashed_at" not in restored.payload and restored.payload["paths"]
        assert trash.entries() == []
    again = ingest(library, settings, encoders=None).to_dict()["counts"]
    assert (again["unchanged"], again["restored"], again["removed"]) == (4, 0, 0)


def test_the_share_rule_holds_back_a_folders_worth_but_not_housekeeping(library, env, encoders):
    settings = env
    ingest(library, settings, encoders)
    (library / "tone.mp3").unlink()  # 1 of 4: ordinary housekeeping
    one = ingest(library, settings, encoders)
    assert one.removed == [str(library / "tone.mp3")] and not one.held_back
    assert one.trash["moved"] == 1 and count(settings) == 3

    for name in ("h264.mp4", "hevc.mp4", "vp9.webm"):
        (library / name).unlink()
    (library / "partial.mp4").write_bytes(b"")  # only a zero-byte file left: no media
    held = ingest(library, settings, encoders)
    assert held.removals_held_back and count(settings) == 3


def test_share_rule_with_media_left(tmp_path, media, encoders):
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2)
    names = ("h264.mp4", "hevc.mp4", "vp9.webm", "tone.mp3", "tone.wav")
    lib = copy_media(media, names, tmp_path / "lib")
    ingest(lib, settings, encoders)
    for name in names[:3]:
        (lib / name).unlink()  # 3 of 5 gone, media still there: over the default share of 0.5
    held = ingest(lib, settings, encoders)
    [h] = held.held_back
    assert len(h.paths) == 3 and h.stored == 5 and "max_remove_fraction=0.5" in h.reason
    assert count(settings) == 5
    lenient = settings.model_copy(update={"max_remove_fraction": 0.8})
    done = ingest(lib, lenient, encoders)
    assert len(done.removed) == 3 and not done.held_back and count(settings) == 2


def test_trash_entries_expire_after_trash_days(library, tmp_path, encoders):
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2)
    ingest(library, settings, encoders)
    (library / "tone.mp3").unlink()
    assert ingest(library, settings, encoders).trash == {"moved": 1, "purged": 0}
    expiring = settings.model_copy(update={"trash_days": 0})
    assert ingest(library, expiring, encoders).trash == {"moved": 0, "purged": 1}


def test_cli_exit_3_names_the_folder_and_trash_commands(library, tmp_path):
    env = {
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_STORE": str(tmp_path / "cli-store"),
        "EMBEDDER_MAX_FRAMES": "2",
        "EMBEDDER_WORKERS": "1",
    }

    def cli(*args, code=0):
        return run_cli(*args, env=env, code=code)

    cli("ingest", library, "--quiet")
    for name in NAMES:
        (library / name).unlink()
    proc = cli("ingest", library, code=3)
    assert f"kept 4 of 4 items under {library}" in " ".join(proc.stderr.split())
    assert "--prune" in proc.stderr
    data = json.loads(cli("ingest", library, "--dry-run", "--json", code=3).stdout)
    assert data["counts"]["held_back"] == 4 and data["counts"]["removed"] == 0
    assert "error" in cli("ingest", library, "--prune", "--no-delete", code=2).stderr
    assert json.loads(cli("ingest", library, "--prune", "--json").stdout)["counts"]["removed"] == 4
    listed = json.loads(cli("trash", "list", "--json").stdout)["items"]
    assert sorted(os.path.basename(i["paths"][0]) for i in listed) == sorted(NAMES)
    assert "not in the trash: nope" in cli("trash", "restore", "nope", code=2).stderr
    restored = json.loads(cli("trash", "restore", str(library / "tone.mp3"), "--json").stdout)["restored"]
    assert [os.path.basename(r["paths"][0]) for r in restored] == ["tone.mp3"]
    assert json.loads(cli("status", "--json").stdout)["points"] == 1
    assert json.loads(cli("trash", "empty", "--json").stdout) == {"purged": 3}
    assert json.loads(cli("trash", "list", "--json").stdout) == {"items": []}


def test_items_list_pages_and_delete_goes_to_the_trash(library, env, encoders):
    from embedder.errors import EmbedderError
    from embedder.items import delete_items, list_items
    from embedder.payload import parse_filters

    settings = env
    ingest(library, settings, encoders)
    with open_store(settings) as store:
        first = list_items(store, offset=0, limit=3)
        second = list_items(store, offset=3, limit=3)
        assert (first.total, len(first.items), first.next_offset) == (4, 3, 3)
        assert (len(second.items), second.next_offset) == (1, None)
        every = [i["id"] for i in first.items + second.items]
        assert every == sorted(every) == sorted(r.id for r in store.scroll())  # stable id order, no overlap
        audio = list_items(store, filter=parse_filters(["kind=audio"]))
        assert [i["path"] for i in audio.items] == [str(library / "tone.mp3")] and audio.total == 1

        with pytest.raises(EmbedderError, match="no such item: nope"):
            delete_items(settings, store, [str(library / "h264.mp4"), "nope"])
        assert store.count() == 4  # nothing deleted when one reference is wrong
        deleted = delete_items(settings, store, [str(library / "h264.mp4"), every[0]])
        assert len(deleted) == len({every[0], deleted[0]["id"]}) and store.count() == 4 - len(deleted)
        with Trash(settings, store) as trash:
            assert {e.reason for e in trash.entries()} == {"deleted by hand"}
            trash.restore_selected(None)
        assert store.count() == 4


def test_a_nested_share_unmounted_is_held_back_without_prune(tmp_path, media, encoders):
    """The campaign's case: root/ holds files, root/share/ is a mount with 3 more; unmount the
    share and ingest root/ again: the 3 (under the 0.5 fraction of the root) stay."""
    import subprocess

    fs = tmp_path / "fs"
    fs.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(fs)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    root = copy_media(
        media, ("h264.mp4", "hevc.mp4", "vp9.webm", "tone.mp3", "tone.wav", "tone.flac", "tone.ogg"), tmp_path / "root"
    )
    share = root / "share"
    share.mkdir()
    try:
        for name in ("vfr.mp4", "tone.m4a", "scene.mp4"):
            shutil.copy(media[name], fs / name)
        subprocess.run(["mount", "--bind", str(fs), str(share)], check=True)
        settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2)
        assert ingest(root, settings, encoders).to_dict()["counts"]["new"] == 10
        subprocess.run(["umount", str(share)], check=True)  # the mount point is left, empty
        held = ingest(root, settings, encoders)
        assert held.removed == [] and held.removals_held_back
        [h] = held.held_back
        assert h.root == str(share) and len(h.paths) == 3 and "another device" in h.reason
        assert count(settings) == 10
        share.rmdir()  # the mount point itself gone: still the share's files, still held
        again = ingest(root, settings, encoders)
        assert again.removed == [] and [len(x.paths) for x in again.held_back] == [3]
        share.mkdir()
        subprocess.run(["mount", "--bind", str(fs), str(share)], check=True)
        back = ingest(root, settings, encoders=None)
        assert back.held_back == [] and back.removed == [] and len(back.unchanged) == 10
    finally:
        subprocess.run(["umount", "-l", str(share)], capture_output=True)
        subprocess.run(["umount", "-l", str(fs)], capture_output=True)


def test_a_subfolders_worth_gone_is_held_back_and_a_single_file_is_not(tmp_path, media, encoders):
    root = copy_media(
        media, ("h264.mp4", "hevc.mp4", "vp9.webm", "tone.mp3", "tone.wav", "tone.flac"), tmp_path / "root"
    )
    for sub, names in (("season1", ("vfr.mp4", "tone.m4a", "scene.mp4")), ("extras", ("tone.ogg",))):
        (root / sub).mkdir()
        for name in names:
            shutil.copy(media[name], root / sub / name)
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2)
    assert ingest(root, settings, encoders).to_dict()["counts"]["new"] == 10
    shutil.rmtree(root / "season1")
    shutil.rmtree(root / "extras")
    run = ingest(root, settings, encoders)
    assert run.removed == [str(root / "extras" / "tone.ogg")]  # housekeeping: one file
    [h] = run.held_back
    assert h.root == str(root / "season1") and len(h.paths) == 3 and "is gone" in h.reason
    pruned = ingest(root, settings, encoders, removals="prune")
    assert len(pruned.removed) == 3 and count(settings) == 6
