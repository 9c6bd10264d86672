"""embedder.Library: the Python API the CLI runs on (ingest, search, recommend, events)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embedder.errors import EmbedderError
from embedder.settings import load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def folder(tmp_path, media):
    lib = tmp_path / "media"
    lib.mkdir()
    for name in ("h264.mp4", "tone.mp3", "vp9.webm"):
        shutil.copy(media[name], lib / name)
    return lib


def settings_for(tmp_path, **more):
    return load_settings(store=str(tmp_path / "store"), models="tiny", device="cpu", workers=1, max_frames=2, **more)


def test_open_reuses_what_is_open_and_refuses_other_settings(tmp_path):
    from embedder import Library

    first = Library.open(settings_for(tmp_path))
    assert Library.open(settings_for(tmp_path)) is first
    with pytest.raises(EmbedderError, match="already open in this process with other settings"):
        Library.open(settings_for(tmp_path, batch_size=7))
    other = Library.open(settings_for(tmp_path, collection="other"))
    assert other is not first
    first.close()
    other.close()
    again = Library.open(settings_for(tmp_path))
    assert again is not first and not again.closed
    again.close()
    with pytest.raises(EmbedderError, match="this Library is closed"):
        again.media  # noqa: B018 (the attribute read is what must raise)


def test_ingest_search_events_recommend_from_python(tmp_path, folder):
    from embedder import Library

    with Library.open(settings_for(tmp_path)) as lib:
        summary = lib.ingest([folder])
        assert len(summary.new) == 3 and not summary.failed
        encoders = lib.encoders
        assert lib.ingest([folder]).unchanged and lib.encoders is encoders  # loaded once, kept
        hits = lib.search("a test pattern", limit=3)
        assert len(hits) == 3 and hits[0].score >= hits[-1].score
        like = lib.search(like=folder / "h264.mp4", limit=5)
        assert {Path(h.path).name for h in like} == {"tone.mp3", "vp9.webm"}  # itself left out
        assert lib.status()["points"] == 3

        video = next(h for h in like if h.path.endswith("vp9.webm"))
        assert lib.recommend("alice").used == ["popular"]  # a new user
        assert lib.add_events([("alice", video.id, 1.0)]) == 1
        recs = lib.recommend("alice", strategy="content")
        # The new event counts at once: its item is excluded as seen, the content branch uses it.
        assert recs.used == ["content"] and video.id not in {r.id for r in recs.items} and recs.items
        assert lib.recommend("alice", strategy="popularity").strategy == "popular"  # an alias
        with pytest.raises(
            EmbedderError,
            match="unknown strategy 'magic'; choose from hybrid, cf, content, words, ease, rp3beta, itemknn, "
            "trained, popular",
        ):
            lib.recommend("alice", strategy="magic")
        similar = lib.similar(str(folder / "h264.mp4"), limit=2)
        assert len(similar) == 2 and all(r.branches == ["content"] for r in similar)


def test_import_embedder_library_does_not_import_torch():
    code = "import sys, embedder; embedder.Library; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_readme_python_example_runs_as_written(tmp_path, folder):
    """The README's example, run verbatim in a folder that has ./media."""
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text[text.index("## Python API") :], re.S)
    assert block, "the README has a Python API section with a python block"
    script = tmp_path / "example.py"
    script.write_text(block.group(1) + "\nimport json\nprint(json.dumps([r.to_dict() for r in recs.items]))\n")
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    items = json.loads(run.stdout.strip().splitlines()[-1])
    assert items and all("branches" in r for r in items)


def test_reembed_through_the_library_then_search_the_new_version(tmp_path, folder):
    from embedder import Library

    with Library.open(settings_for(tmp_path)) as lib:
        lib.ingest([folder])
    with Library.open(settings_for(tmp_path, clip_model="tiny-clip-b")) as lib:
        assert lib.status()["models"]["visual"] == ["open_clip:embedder-tiny-clip/random@1"]
        report = lib.reembed()
        assert report["rebuild"]["switched"] and report["rebuild"]["target"] == "media_v2"
        # The library's handle followed the alias to the new version.
        status = lib.status()
        assert status["collection"] == "media_v2" and status["points"] == 3
        assert status["models"]["visual"] == ["open_clip:embedder-tiny-clip/random@1b"]
        assert len(lib.search("a test pattern", limit=3)) == 3


def test_events_fold_into_the_cf_vector_and_popularity_without_retraining(tmp_path):
    import numpy as np

    from embedder import Library
    from embedder.ids import user_point_id
    from embedder.recommend.cf import CFParams, fit_cf, fold_in_user, write_cf
    from embedder.recommend.interactions import Interaction

    # Two tastes: users 0-19 like items a0-a9, users 20-39 like b0-b9.
    events = [
        Interaction(f"u{u}", f"{'a' if u < 20 else 'b'}{(u + k) % 10}", 1.0 + k % 3)
        for u in range(40)
        for k in range(6)
    ]
    settings = settings_for(tmp_path, cf_factors=8, cf_regularization=0.1)
    params = CFParams.from_settings(settings)
    model = fit_cf(events, params)
    with Library.open(settings) as lib:
        from embedder.encoders.bundle import schema_for, users_schema

        lib.media.ensure_collection(schema_for(settings))
        lib.users.ensure_collection(users_schema(settings))
        assert lib.record_events(events)["cf"].startswith("no collaborative model yet")
        write_cf(model, lib.media, lib.users)
        # The fold-in of a trained user's own history gives back (nearly) their ALS vector.
        model_factors = lib.item_factors()
        ids, factors, gram = model_factors.ids, model_factors.factors, model_factors.gram
        row = {pid: n for n, pid in enumerate(ids)}
        from embedder.ids import resolve_items

        keys = resolve_items(model.items, lib.media)
        mine = [e for e in events if e.user == "u3"]
        folded = fold_in_user([row[keys[e.item]] for e in mine], [e.weight for e in mine], factors, gram, params)
        trained = model.user_factors[model.users.index("u3")]
        assert float(folded @ trained / np.linalg.norm(folded) / np.linalg.norm(trained)) > 0.99

        # A new user: no vector before, a cf vector from their first events, on the right side.
        assert lib.recommend("newbie", strategy="cf").used == ["popular"]
        before = {r.payload["item"]: r.payload["popularity"] for r in lib.media.scroll() if r.payload.get("item")}
        report = lib.record_events([("newbie", "b1", 3.0), ("newbie", "b2", 3.0)])
        assert report["added"] == 2 and report["cf_users_updated"] == 1 and report["popularity_updated"] == 2
        recs = lib.recommend("newbie", strategy="cf", limit=5)
        assert recs.used == ["cf"] and not {"b1", "b2"} & {r.item for r in recs.items}
        vector = lib.users.retrieve([user_point_id("newbie")], with_vectors=True)[0].vectors["cf"]
        scores = {item: float(factors[row[keys[item]]] @ vector) for item in model.items}
        taste = np.mean([scores[f"b{i}"] for i in range(10)]) - np.mean([scores[f"a{i}"] for i in range(10)])
        assert taste > 0, scores  # the folded-in vector leans to the side of the new user's events
        after = {r.payload["item"]: r.payload["popularity"] for r in lib.media.scroll() if r.payload.get("item")}
        assert after["b1"] == before["b1"] + 1 and after["a1"] == before["a1"]
        assert lib.users.retrieve([user_point_id("newbie")])[0].payload["user"] == "newbie"
        # The same event again changes nothing.
        assert lib.record_events([("newbie", "b1", 3.0)])["cf"] == "unchanged: no new event"


def test_items_catalogue_and_log_through_the_library(tmp_path, folder):
    """The items, trash and log commands as Library calls: a page with a filter, a catalogue import
    (a dry run stores nothing), deletion into the trash and back, emptying it, an event log's
    import with a bad row, the log's counts, flagged users, and forgetting a user."""
    from embedder import Library
    from embedder.recommend.interactions import ColumnMap

    catalogue = tmp_path / "films.csv"
    catalogue.write_text("id,title,genres\nm1,A Rocket Launch,space|documentary\nm2,Quiet Rain,ambient\n")
    with Library.open(settings_for(tmp_path)) as lib:
        lib.ingest([folder])
        page = lib.items(limit=2, filters=["kind=video"])
        assert (page.total, len(page.items), page.next_offset) == (2, 2, None)
        assert lib.items(offset=1, limit=1).next_offset == 2 and lib.items().total == 3
        checked = lib.import_catalogue(catalogue, dry_run=True)
        assert (checked["rows"], checked["problems"], lib.items().total) == (2, 0, 3)
        assert lib.import_catalogue(catalogue)["created"] == 2 and lib.items().total == 5
        with pytest.raises(EmbedderError, match="no such catalogue file"):
            lib.import_catalogue(tmp_path / "missing.csv")
        deleted = lib.delete_items([str(folder / "tone.mp3")])
        assert [d["path"] for d in deleted] == [str(folder / "tone.mp3")] and lib.items().total == 4
        tone = str(folder / "tone.mp3")
        assert [entry.paths for entry in lib.trash_entries()] == [[tone]]
        assert [entry.paths for entry in lib.restore_from_trash([tone])] == [[tone]] and lib.items().total == 5
        lib.delete_items([tone])
        assert lib.empty_trash() == 1 and lib.trash_entries() == [] and lib.items().total == 4
        events = tmp_path / "events.tsv"
        events.write_text("ann\tm1\t5\nann\tm2\t1\nbob\tm1\t4\nbob\tnot-a-rating\tx\n")
        imported = lib.import_events(
            events, ColumnMap(rating="rating", rating_threshold=3), fmt="tsv", names=["user", "item", "rating"]
        )
        assert (imported["rows"], imported["added"], imported["bad"], imported["items_matched"]) == (4, 3, 1, 2)
        assert lib.interaction_stats() | {"path": None} == {
            "events": 3,
            "negative_events": 1,
            "users": 2,
            "items": 2,
            "path": None,
        }
        assert lib.suspicious_users() == {"users": 2, "flagged": []}
        forgotten = lib.forget_user("ann")
        assert forgotten["events_removed"] == 2 and lib.interaction_stats()["users"] == 1


def test_snapshots_check_and_versions_through_one_open_library(tmp_path, folder):
    """The whole-store commands on a Library that keeps its store open: a snapshot and its
    restore (the library reads the restored store after), a check, the version listing, and the
    refusals of a rollback with nothing older and of dropping the version in use."""
    from embedder import Library

    with Library.open(settings_for(tmp_path)) as lib:
        lib.ingest([folder])
        lib.add_events([("ann", str(folder / "h264.mp4"), 1.0)])
        made = lib.snapshot("before")
        assert made["name"].endswith("-before") and [s["name"] for s in lib.snapshots()] == [made["name"]]
        lib.delete_items([str(folder / "tone.mp3")])
        lib.add_events([("bob", str(folder / "vp9.webm"), 1.0)])
        assert lib.items().total == 2 and lib.interaction_stats()["events"] == 2
        done = lib.restore_snapshot(made["name"])
        assert done["restored"] == made["name"] and done["previous_state"].endswith("-pre-restore")
        assert lib.items().total == 3 and lib.interaction_stats()["events"] == 1  # reopened: what was copied
        checked = lib.check()
        assert checked.healthy and checked.main.to_dict()["points"] == 3
        listing = lib.collections()
        assert listing["aliases"] == {"media": "media_v1"}
        assert {"name": "media_v1", "aliases": ["media"]} in listing["collections"]
        with pytest.raises(EmbedderError, match="no earlier version of 'media'"):
            lib.roll_back()
        with pytest.raises(EmbedderError, match="in use by alias media"):
            lib.drop_collection("media_v1")
        assert lib.search("tone", limit=1, mode="lexical")[0].path == str(folder / "tone.mp3")
