import json

import pytest

from embedder.errors import EmbedderError
from embedder.recommend.interactions import ColumnMap, InteractionLog, parse_timestamp


@pytest.fixture
def log(tmp_path):
    with InteractionLog(tmp_path / "events.sqlite") as log:
        yield log


def test_csv_with_header_weights_duplicates_and_bad_rows(tmp_path, log):
    f = tmp_path / "events.csv"
    f.write_text(
        "uid,video,plays,when\n"
        "u1,a.mp4,3,2024-01-01T10:00:00Z\n"
        "u1,b.mp4,1,1704103200\n"
        "u1,a.mp4,3,2024-01-01T10:00:00Z\n"  # exact duplicate (line 4)
        ",c.mp4,1,1704103200\n"  # line 5: no user
        "u2,c.mp4,lots,1704103200\n"  # line 6: bad weight
        "u2,c.mp4,2,yesterday\n"  # line 7: bad time
        "u2,c.mp4,2\n"  # line 8: missing field
        "u2,d.mp4,-1,1704103300\n"
    )  # negative feedback
    cols = ColumnMap(user="uid", item="video", weight="plays", timestamp="when")
    report = log.import_file(f, cols)
    assert (report.rows, report.added, report.duplicates, report.bad) == (8, 3, 1, 4)
    assert report.bad_rows == [
        {"line": 5, "reason": "missing user (column 'uid')"},
        {"line": 6, "reason": "not a number: 'lots' (column 'plays')"},
        {"line": 7, "reason": "unreadable timestamp 'yesterday' (column 'when')"},
        {"line": 8, "reason": "expected 4 fields, found 3"},
    ]
    again = log.import_file(f, cols)
    assert (again.added, again.duplicates) == (0, 4)  # re-importing changes nothing
    events = log.all()
    assert [(e.user, e.item, e.weight) for e in events] == [
        ("u1", "a.mp4", 3.0),
        ("u1", "b.mp4", 1.0),
        ("u2", "d.mp4", -1.0),
    ]
    assert events[0].ts == 1704103200.0 and events[1].ts == 1704103200.0
    assert log.stats() == {"path": str(log.path), "events": 3, "users": 2, "items": 3, "negative_events": 1}


def test_headerless_tsv_like_lastfm(tmp_path, log):
    f = tmp_path / "user_artists.dat"
    f.write_bytes(b"2\t51\t13883\r\n2\t52\t11690\r\n3\t51\t7\r\n")
    with pytest.raises(EmbedderError, match="cannot tell the format from '.dat'"):
        log.import_file(f, ColumnMap(weight="weight"))
    report = log.import_file(f, ColumnMap(weight="weight"), fmt="tsv", columns=["user", "item", "weight"])
    assert report.added == 3
    assert [(e.user, e.item, e.weight) for e in log.for_user("2")] == [("2", "51", 13883.0), ("2", "52", 11690.0)]


def test_jsonl_events_and_ratings_and_parquet(tmp_path, log):
    f = tmp_path / "events.jsonl"
    f.write_text(
        json.dumps({"user": "u", "item": "x", "event": "like", "ts": 1700000000000})
        + "\n"
        + "{not json\n"
        + json.dumps({"user": "u", "item": "y", "event": "teleport"})
        + "\n"
        + json.dumps({"user": "u", "item": "z", "event": "skip"})
        + "\n"
    )
    report = log.import_file(f, ColumnMap(event="event", timestamp="ts"))
    assert report.added == 2
    assert [b["line"] for b in report.bad_rows] == [2, 3]
    assert report.bad_rows[1]["reason"].startswith("unknown event 'teleport' (column 'event'; known: ")
    assert {e.item: e.weight for e in log.all()} == {"x": 3.0, "z": -1.0}
    assert {e.item: e.ts for e in log.all()}["x"] == 1700000000.0  # milliseconds recognised

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"u": ["a", "a", "b"], "i": ["m1", "m2", "m1"], "stars": [5.0, 1.0, 4.0]}), tmp_path / "r.parquet"
    )
    report = log.import_file(tmp_path / "r.parquet", ColumnMap(user="u", item="i", rating="stars", rating_threshold=3))
    assert report.added == 3
    assert {(e.user, e.item): e.weight for e in log.all() if e.user in ("a", "b")} == {
        ("a", "m1"): 2.0,
        ("a", "m2"): -2.0,
        ("b", "m1"): 1.0,
    }


def test_a_file_with_no_valid_row_is_an_error(tmp_path, log):
    f = tmp_path / "wrong.csv"
    f.write_text("user,item\n,q\n")  # the columns exist, no row fills them
    with pytest.raises(
        EmbedderError, match=r"no valid rows \(line 2: missing user \(column 'user'\)\); check the column flags"
    ):
        log.import_file(f, ColumnMap())


def test_timestamps():
    assert parse_timestamp("1970-01-01T00:01:00+00:00") == 60.0
    assert parse_timestamp(60) == 60.0
    assert parse_timestamp("") is None


def test_hostile_import_files_get_clear_errors(tmp_path, log):
    binary = tmp_path / "events.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(EmbedderError, match=r"binary data, not CSV text"):
        log.import_file(binary, ColumnMap())
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("uid,vid,plays\na,b,1\n")
    with pytest.raises(
        EmbedderError, match=r"missing columns 'user', 'item'; the file's columns are 'uid', 'vid', 'plays'"
    ):
        log.import_file(wrong, ColumnMap())
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text('{"who": "a", "what": "b"}\n')
    with pytest.raises(EmbedderError, match=r"missing column 'user'.*'who', 'what'"):
        log.import_file(jsonl, ColumnMap(item="what"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    report = log.import_file(empty, ColumnMap())
    assert (report.rows, report.added) == (0, 0) and report.warnings == [
        f"{empty} has no data rows: nothing was imported"
    ]


def test_an_oversize_field_is_one_bad_row_and_the_rest_imports(tmp_path, log):
    f = tmp_path / "big.csv"
    f.write_text("user,item,note\nu1,i1," + "x" * 200_000 + "\nu2,i2,short\n")
    report = log.import_file(f, ColumnMap())
    assert (report.rows, report.added, report.bad) == (2, 1, 1)
    assert report.bad_rows == [{"line": 2, "reason": "unreadable row: field larger than field limit (131072)"}]
    assert [(e.user, e.item) for e in log.all()] == [("u2", "i2")]


def test_long_imports_report_progress_on_stderr(tmp_path):
    import subprocess
    import sys

    f = tmp_path / "plays.csv"
    f.write_text("user,item\n" + "".join(f"u{n % 97},i{n}\n" for n in range(60_000)))
    proc = subprocess.run(
        [sys.executable, "-m", "embedder.cli", "--store", str(tmp_path / "s"), "interactions", "import", str(f)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import plays.csv: ")]
    assert len(lines) >= 5 and lines[-1].startswith("import plays.csv: 100% 60000 rows")
    assert "60000 rows: 60000 added" in proc.stdout


def test_retention_drops_old_events_for_good_and_import_skips_them(tmp_path):
    import json
    import time

    from tests.cli_runner import run_cli

    now = time.time()
    f = tmp_path / "events.csv"
    rows = [("u1", "old-item-xyz", now - 400 * 86400), ("u1", "recent", now - 10 * 86400), ("u2", "fresh", now - 3600)]
    f.write_text("user,item,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows) + "u3,undated,\n")
    store = tmp_path / "store"
    env = {"EMBEDDER_STORE": str(store)}
    imported = json.loads(run_cli("interactions", "import", f, "--time-col", "ts", "--json", env=env).stdout)
    assert (imported["added"], imported["expired"]) == (4, 0)
    pruned = json.loads(run_cli("interactions", "prune", "--older-than", "30", "--json", env=env).stdout)
    assert (pruned["dropped"], pruned["undated_kept"], pruned["older_than_days"]) == (1, 1, 30)
    with InteractionLog(store / "interactions.sqlite") as log:
        assert sorted(e.item for e in log.all()) == ["fresh", "recent", "undated"]
    for file in store.glob("interactions.sqlite*"):  # the dropped row's bytes are gone from disk
        assert b"old-item-xyz" not in file.read_bytes()
    assert "give --older-than DAYS, or set retention_days" in run_cli("interactions", "prune", env=env, code=2).stderr

    # With retention_days set, an import never stores rows past it.
    again = json.loads(
        run_cli(
            "interactions", "import", f, "--time-col", "ts", "--json", env={**env, "EMBEDDER_RETENTION_DAYS": "30"}
        ).stdout
    )
    assert (again["expired"], again["added"], again["duplicates"]) == (1, 0, 3)


def test_imported_items_join_the_store_however_their_paths_are_written(tmp_path, media):
    """The campaign's case: a log whose items were relative paths ('media/a.mp4', './media/a.mp4')
    was stored as typed, made phantom items, and reported no warning."""
    import json
    import os
    import shutil

    from tests.cli_runner import run_cli

    work = tmp_path / "work"
    (work / "media").mkdir(parents=True)
    for name in ("h264.mp4", "tone.mp3"):
        shutil.copy(media[name], work / "media" / name)
    os.symlink(work / "media", work / "linked")
    env = {"EMBEDDER_MODELS": "tiny", "EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_WORKERS": "1"}
    run_cli("ingest", work / "media", env=env)
    log = work / "events.csv"
    log.write_text(
        "user,item,weight\n"
        "u1,media/h264.mp4,1\nu2,./media/h264.mp4,1\nu3,linked/tone.mp3,1\n"
        f"u4,{work / 'media' / 'tone.mp3'},1\nu5,catalogue-42,1\n"
    )
    (work / "map.csv").write_text("id,item\ncatalogue-42,media/tone.mp3\n")
    proc = subprocess_import(run_cli, log, env, work)
    data = json.loads(proc.stdout)
    assert (data["items_matched"], data["items_unmatched"], data["warnings"]) == (4, 1, [])
    mapped = json.loads(subprocess_import(run_cli, log, env, work, "--item-map", work / "map.csv").stdout)
    assert mapped["items_matched"] == 5 and mapped["items_unmatched"] == 0
    from embedder.recommend.interactions import InteractionLog

    with InteractionLog(tmp_path / "store" / "interactions.sqlite") as stored:
        items = {e.item for e in stored.all()}
    assert items == {str(work / "media" / "h264.mp4"), str(work / "media" / "tone.mp3"), "catalogue-42"}
    stray = work / "stray.csv"
    stray.write_text("user,item\nu1,elsewhere/a.mp4\nu2,elsewhere/b.mp4\nu3,media/h264.mp4\n")
    warned = json.loads(subprocess_import(run_cli, stray, env, work).stdout)
    assert (
        warned["items_unmatched"] == 2 and "2 of 3 distinct items match nothing in the store" in warned["warnings"][0]
    )
    run_cli("interactions", "train", env=env)
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    assert sum(status["kinds"].values()) == status["points"] and status["kinds"]["item"] == 3  # the kinds add up


def subprocess_import(run_cli, log, env, cwd, *extra):
    import os

    here = os.getcwd()
    os.chdir(cwd)  # relative paths in the log are relative to where the command runs
    try:
        return run_cli("interactions", "import", log, "--json", *extra, env=env)
    finally:
        os.chdir(here)
