"""Planning reads the points under the run's folders, not the whole collection."""

import shutil

import pytest

from embedder.encoders.bundle import load_encoders
from embedder.engine.ingest import StoreIndex, has_folder_keys, run_ingest
from embedder.settings import load_settings
from embedder.store import PointRecord, open_store
from embedder.store.status import collection_status


@pytest.fixture(scope="module")
def encoders():
    return load_encoders(load_settings(models="tiny", device="cpu"))


@pytest.fixture
def world(tmp_path, media):
    for folder, names in {"a": ("h264.mp4", "tone.mp3"), "b": ("vp9.webm", "tone.wav")}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            shutil.copy(media[name], tmp_path / folder / name)
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2)
    return tmp_path, settings


def test_a_run_reads_only_the_points_under_its_folders_and_still_links_copies(world, encoders, media):
    root, settings = world
    run_ingest([root / "a", root / "b"], settings, encoders=encoders)
    with open_store(settings) as store:
        index = StoreIndex.read(store, [root / "a"])
        assert sorted(index.ids_by_path) == [str(root / "a" / "h264.mp4"), str(root / "a" / "tone.mp3")]
        assert sorted(StoreIndex.read(store, [root / "b" / "tone.wav"]).ids_by_path) == [str(root / "b" / "tone.wav")]
        assert len(StoreIndex.read(store).ids_by_path) == 4  # no roots: everything, as before
        stored = store.retrieve([point_id_of(store, root / "a" / "h264.mp4")])[0].payload
        assert stored["dirs"] == sorted({"/", *(str(p) for p in (root / "a").parents), str(root / "a")})

    (root / "c").mkdir()
    shutil.copy(media["vp9.webm"], root / "c" / "copy.webm")  # content stored under b/, outside this run's root
    summary = run_ingest([root / "c"], settings, encoders=encoders)
    assert summary.new == [str(root / "c" / "copy.webm")] and not summary.timings  # linked: nothing encoded
    with open_store(settings) as store:
        linked = store.retrieve([point_id_of(store, root / "b" / "vp9.webm")])[0].payload
        assert linked["paths"] == [str(root / "b" / "vp9.webm"), str(root / "c" / "copy.webm")]
        assert str(root / "c") in linked["dirs"] and str(root / "b") in linked["dirs"]
        assert store.count() == 4
    (root / "a" / "tone.mp3").unlink()
    removed = run_ingest([root / "a"], settings, encoders=encoders)  # a removal under the root is still seen
    assert removed.removed == [str(root / "a" / "tone.mp3")] and removed.unchanged == [str(root / "a" / "h264.mp4")]


def test_items_stored_before_folder_keys_are_given_them_once(world, encoders):
    root, settings = world
    run_ingest([root / "a", root / "b"], settings, encoders=encoders)
    with open_store(settings) as store:  # what an older version stored: no dirs key
        old = [
            PointRecord(r.id, r.vectors, {k: v for k, v in r.payload.items() if k != "dirs"})
            for r in store.scroll(with_vectors=True)
        ]
        store.upsert(old)
        assert not has_folder_keys(store)
        assert len(StoreIndex.read(store, [root / "a"]).ids_by_path) == 4  # read whole, to be safe
    dry = run_ingest([root / "a"], settings, dry_run=True)
    assert len(dry.unchanged) == 2
    with open_store(settings) as store:
        assert not has_folder_keys(store)  # a dry run writes nothing
    again = run_ingest([root / "a"], settings, encoders=encoders)
    assert len(again.unchanged) == 2 and not again.removed
    with open_store(settings) as store:
        assert has_folder_keys(store)
        assert len(StoreIndex.read(store, [root / "a"]).ids_by_path) == 2


def test_status_counts_models_with_the_engine(world, encoders):
    root, settings = world
    run_ingest([root / "a"], settings, encoders=encoders)
    with open_store(settings) as store:
        status = collection_status(store)
        assert store.facet("models.visual") == {encoders.model_ids["visual"]: 1}  # the video only
        assert status["models"] == {m: [encoders.model_ids[m]] for m in ("visual", "audio", "text")}
        assert status["kinds"] == {"video": 1, "audio": 1, "item": 0}


def point_id_of(store, path) -> str:
    return next(iter(store.scroll({"paths": str(path)}))).id
