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
    f.write_text("uid,video,plays,when\n"
                 "u1,a.mp4,3,2024-01-01T10:00:00Z\n"
                 "u1,b.mp4,1,1704103200\n"
                 "u1,a.mp4,3,2024-01-01T10:00:00Z\n"   # exact duplicate (line 4)
                 ",c.mp4,1,1704103200\n"                 # line 5: no user
                 "u2,c.mp4,lots,1704103200\n"            # line 6: bad weight
                 "u2,c.mp4,2,yesterday\n"                # line 7: bad time
                 "u2,c.mp4,2\n"                          # line 8: missing field
                 "u2,d.mp4,-1,1704103300\n")             # negative feedback
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
    assert [(e.user, e.item, e.weight) for e in events] == [("u1", "a.mp4", 3.0), ("u1", "b.mp4", 1.0), ("u2", "d.mp4", -1.0)]
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
    f.write_text(json.dumps({"user": "u", "item": "x", "event": "like", "ts": 1700000000000}) + "\n"
                 + "{not json\n"
                 + json.dumps({"user": "u", "item": "y", "event": "teleport"}) + "\n"
                 + json.dumps({"user": "u", "item": "z", "event": "skip"}) + "\n")
    report = log.import_file(f, ColumnMap(event="event", timestamp="ts"))
    assert report.added == 2
    assert [b["line"] for b in report.bad_rows] == [2, 3]
    assert report.bad_rows[1]["reason"].startswith("unknown event 'teleport' (column 'event'; known: ")
    assert {e.item: e.weight for e in log.all()} == {"x": 3.0, "z": -1.0}
    assert {e.item: e.ts for e in log.all()}["x"] == 1700000000.0  # milliseconds recognised

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"u": ["a", "a", "b"], "i": ["m1", "m2", "m1"], "stars": [5.0, 1.0, 4.0]}), tmp_path / "r.parquet")
    report = log.import_file(tmp_path / "r.parquet", ColumnMap(user="u", item="i", rating="stars", rating_threshold=3))
    assert report.added == 3
    assert {(e.user, e.item): e.weight for e in log.all() if e.user in ("a", "b")} == {("a", "m1"): 2.0, ("a", "m2"): -2.0, ("b", "m1"): 1.0}


def test_a_file_with_no_valid_row_is_an_error(tmp_path, log):
    f = tmp_path / "wrong.csv"
    f.write_text("person,thing\np,q\n")
    with pytest.raises(EmbedderError, match=r"no valid rows \(line 2: missing user \(column 'user'\)\); check the column flags"):
        log.import_file(f, ColumnMap())


def test_timestamps():
    assert parse_timestamp("1970-01-01T00:01:00+00:00") == 60.0
    assert parse_timestamp(60) == 60.0
    assert parse_timestamp("") is None
