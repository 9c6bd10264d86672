"""An embedded collection answers repeated small reads without loading the engine, and never
with an answer older than its last write (embedder/store/reads.py)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedder.snapshots import create_snapshot, restore_snapshot
from embedder.store import PointRecord, point_id
from embedder.store import reads as kept_reads
from embedder.store.edge import EdgeStore
from embedder.store.reads import READS_FILE

DIMS = {"visual": 4, "content": 4}


def item(i: int, folder: str = "/m") -> PointRecord:
    rng = np.random.default_rng(i)
    vectors = {name: rng.standard_normal(4).astype(np.float32) for name in DIMS}
    return PointRecord(
        point_id(f"item-{i}"),
        vectors,
        {
            "paths": [f"{folder}/{i}.mp4"],
            "dirs": ["/", folder],
            "kind": "video",
            "modalities": ["visual"],
            "size": 1000 + i,
            "models": {"visual": "clip-a"},
        },
    )


def reads(store: EdgeStore) -> dict:
    """What a no-op ingest and `status` ask: counts, a facet, the points under a folder."""
    return {
        "count": store.count(),
        "videos": store.count({"kind": ["video", "audio"]}),
        "models": store.facet("models.visual"),
        "under_m": sorted((r.payload["size"], r.id) for r in store.scroll({"dirs": ["/m"]})),
    }


@pytest.fixture
def root(tmp_path):
    with EdgeStore(tmp_path / "store", "media") as store:
        store.ensure_collection(DIMS)
        store.upsert([item(i) for i in range(5)] + [item(9, "/other")])
    return tmp_path / "store"


def test_a_second_open_answers_the_same_reads_without_loading_the_engine(root):
    with EdgeStore(root, "media") as first:
        answers = reads(first)
        assert first.engine_loaded and first.engine_loads == 1
    assert answers["count"] == 6 and answers["videos"] == 6 and answers["models"] == {"clip-a": 6}
    assert [size for size, _ in answers["under_m"]] == [1000, 1001, 1002, 1003, 1004]
    with EdgeStore(root, "media") as second:
        assert reads(second) == answers
        assert second.engine_loads == 0 and second._reads.hits == 4
        assert second.info()["points"] == 6 and second.info()["exists"] is True
        assert second.engine_loads == 0
        assert second.retrieve([point_id("item-0")])[0].payload["size"] == 1000
        assert second.engine_loads == 1


def test_a_write_drops_the_kept_answers_before_it_reaches_the_engine(root):
    with EdgeStore(root, "media") as store:
        reads(store)
    assert (root / "media" / READS_FILE).is_file()
    with EdgeStore(root, "media") as store:
        store.upsert([item(5)])
        assert not (root / "media" / READS_FILE).exists()  # gone before the process could die
        assert store.count() == 7  # the engine's answer, not the kept 6
    with EdgeStore(root, "media") as store:
        assert reads(store)["under_m"][-1] == (1005, point_id("item-5"))


def test_a_writer_killed_before_closing_leaves_no_stale_answer(root):
    with EdgeStore(root, "media") as store:
        assert reads(store)["count"] == 6
    # Another process adds a point, deletes one, and dies without closing (no save, no unlock).
    code = (
        "import os, sys\n"
        "from embedder.store.edge import EdgeStore\n"
        "from tests.store.test_kept_reads import item\n"
        "from embedder.store import point_id\n"
        f"store = EdgeStore({str(root)!r}, 'media')\n"
        "store.upsert([item(7)])\n"
        "store.delete([point_id('item-0')])\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
    with EdgeStore(root, "media") as store:
        after = reads(store)
        assert store.engine_loads == 1
    assert after["count"] == 6 and after["models"] == {"clip-a": 6}
    assert [size for size, _ in after["under_m"]] == [1001, 1002, 1003, 1004, 1007]


def test_a_paused_store_sees_what_another_opener_wrote_meanwhile(root):
    reader = EdgeStore(root, "media")
    try:
        assert reader.count() == 6
        reader.pause()  # lets the lock go, as ingest does while it decodes
        with EdgeStore(root, "media") as writer:
            writer.upsert([item(6)])
        assert reader.count() == 7
        assert len(list(reader.scroll({"dirs": ["/m"]}))) == 6
    finally:
        reader.close()


def test_a_read_that_spans_a_write_is_not_kept(root):
    with EdgeStore(root, "media") as store:
        pages = store.scroll({"dirs": ["/m"]}, batch=2)
        first = [next(pages), next(pages)]  # read before the write
        store.set_payload([point_id(f"item-{i}") for i in range(5)], {"size": 0})
        rest = list(pages)
        assert [r.payload["size"] for r in first] != [0, 0] and [r.payload["size"] for r in rest] == [0, 0, 0]
        assert {r.payload["size"] for r in store.scroll({"dirs": ["/m"]})} == {0}  # asked again: current
    with EdgeStore(root, "media") as store:
        assert {r.payload["size"] for r in store.scroll({"dirs": ["/m"]})} == {0}


def test_big_answers_and_damaged_files_fall_back_to_the_engine(root, monkeypatch):
    monkeypatch.setattr(kept_reads, "MAX_ENTRY_BYTES", 200)  # one point's payload fits, five do not
    with EdgeStore(root, "media") as store:
        assert len(list(store.scroll({"dirs": ["/m"]}))) == 5
        assert len(list(store.scroll({"dirs": ["/other"]}))) == 1
    with EdgeStore(root, "media") as store:
        assert len(list(store.scroll({"dirs": ["/other"]}))) == 1 and store.engine_loads == 0
        assert len(list(store.scroll({"dirs": ["/m"]}))) == 5 and store.engine_loads == 1
    (root / "media" / READS_FILE).write_text('{"format": 1, "entries": [["count []"')  # cut short
    with EdgeStore(root, "media") as store:
        assert store.count() == 6 and store.engine_loads == 1
    assert json.loads((root / "media" / READS_FILE).read_text())["format"] == kept_reads.FORMAT  # replaced whole


def test_a_restored_snapshot_brings_its_own_answers_back(root, tmp_path):
    from embedder.settings import load_settings

    settings = load_settings(store=str(root), collection="media")
    with EdgeStore(root, "media") as store:
        assert store.count() == 6
    snapshot = create_snapshot(settings)["name"]
    with EdgeStore(root, "media") as store:
        store.upsert([item(10), item(11)])
        assert store.count() == 8  # kept with the later state
    restore_snapshot(settings, snapshot)
    with EdgeStore(root, "media") as store:
        assert store.count() == 6 and store.engine_loads == 0
        assert len(store.retrieve([point_id("item-10")])) == 0  # the engine agrees


WRITES = {
    "upsert": lambda s: s.upsert([item(20)]),
    "update_vectors": lambda s: s.update_vectors({point_id("item-1"): {"visual": np.ones(4, np.float32)}}),
    "set_payload": lambda s: s.set_payload([point_id("item-1")], {"kind": "audio"}),
    "delete": lambda s: s.delete([point_id("item-1")]),
    "ensure_indexes": lambda s: s.ensure_indexes(),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_kind_of_write_drops_the_kept_answers(root, write):
    with EdgeStore(root, "media") as store:
        reads(store)
    with EdgeStore(root, "media") as store:
        assert reads(store) and store.engine_loads == 0 and (root / "media" / READS_FILE).is_file()
        WRITES[write](store)
        assert not (root / "media" / READS_FILE).exists()
        hits = store._reads.hits
        reads(store)
        assert store._reads.hits == hits  # asked the engine again, not the answers from before the write
