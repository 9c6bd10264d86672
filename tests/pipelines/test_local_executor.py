"""The local executor stores one group while the next encodes, and a failed write stops the run
without losing what was stored before it."""

import threading

import pytest

from embedder.encoders.bundle import load_encoders, schema_for
from embedder.engine.stages import IngestStages, LocalExecutor
from embedder.errors import StoreError
from embedder.media.discover import discover
from embedder.progress import Progress
from embedder.settings import load_settings
from embedder.store import open_store, point_id
from tests.conftest import copy_media

NAMES = ("h264.mp4", "hevc.mp4", "video_only.mp4", "scene.mp4")


class Recorder(Progress):
    def __init__(self):
        super().__init__()
        self.outcomes: dict[str, str] = {}

    def advance(self, path, outcome="ok"):
        self.outcomes[path] = outcome


@pytest.fixture
def run_parts(tmp_path, media):
    # batch_size 1: a group is flushed every 4 frames, so these four short videos make several groups
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, batch_size=1)
    files = discover([copy_media(media, NAMES, tmp_path / "lib")]).files
    return settings, load_encoders(settings), files


def test_the_next_group_encodes_while_the_last_is_written(run_parts):
    settings, encoders, files = run_parts
    second_encode = threading.Event()
    overlapped = []

    class Watched(IngestStages):
        encodes = 0

        def encode(self, batch):
            Watched.encodes += 1
            if Watched.encodes == 2:
                second_encode.set()
            return super().encode(batch)

        def write(self, points, previews=None):
            if not overlapped:  # the first write waits for the second group's encoding to start
                overlapped.append(second_encode.wait(timeout=30))
            super().write(points, previews)

    progress = Recorder()
    with open_store(settings) as store:
        store.ensure_collection(schema_for(settings))
        report = LocalExecutor(1, 60).run(Watched(settings, encoders, store), files, progress)
        stored = {r.id for r in store.scroll()}
    assert overlapped == [True]  # without a writer thread the encoder would still be waiting
    assert Watched.encodes >= 2
    assert stored == {point_id(f.sha256) for f in files}
    assert progress.outcomes == {str(f.path): "ok" for f in files}
    assert report.failed == [] and report.timings["write_s"] > 0 and "wait_for_write_s" in report.timings


def test_a_failed_write_stops_the_run_and_keeps_what_was_stored(run_parts):
    settings, encoders, files = run_parts

    first_write: list[str] = []

    class FullDisk(IngestStages):
        writes = 0

        def write(self, points, previews=None):
            FullDisk.writes += 1
            if FullDisk.writes == 2:
                raise StoreError("not enough free space to write to collection 'media'")
            first_write.extend(p.payload["path"] for p in points)
            super().write(points, previews)

    progress = Recorder()
    with open_store(settings) as store:
        store.ensure_collection(schema_for(settings))
        with pytest.raises(StoreError, match="not enough free space"):
            LocalExecutor(1, 60).run(FullDisk(settings, encoders, store), files, progress)
        stored = sorted(r.payload["path"] for r in store.scroll())
    assert 0 < len(first_write) < len(files)
    assert stored == sorted(first_write)  # the group written before the error is kept
    assert progress.outcomes == {p: "ok" for p in first_write}  # and only stored files are reported done
    assert FullDisk.writes == 2  # nothing is written to a store after it failed
