"""Items known by metadata alone ('embedder items import'): rows checked one by one, text encoded
and indexed for words, fields filterable, ids joined with the interaction log, nothing lost."""

from __future__ import annotations

import json

import pytest

from embedder import Library
from embedder.catalogue import import_catalogue, read_catalogue
from embedder.errors import EmbedderError
from embedder.ids import item_point_id
from embedder.settings import load_settings
from tests.cli_runner import run_cli

CSV = (
    "id,title,description,genres,price,audience,bad col\n"
    "m1,Toy Story (1995),Toys come alive when nobody looks,Animation|Children's|Comedy,9.99,kids,x\n"
    "m2,GoldenEye (1995),A spy thriller with a satellite weapon,Action|Adventure|Thriller,12.5,adults,y\n"
    "m1,Duplicate,,Comedy,1,kids,z\n"
    ",No id,,Drama,1,kids,z\n"
    "m3,,,,,,\n"
    "m4,Heat (1995),Cops and robbers in Los Angeles,Action|Crime,7,adults,\n"
    "m6,Short row\n"
)


@pytest.fixture
def catalogue(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes(
        CSV.encode() + b"m5,Caf\xe9 bad bytes,,Drama,3,kids,\n" + f"m7,Long,{'x' * 10_001},Drama,1,kids,\n".encode()
    )
    return path


def test_every_bad_row_is_counted_with_its_line_and_reason(catalogue, tmp_path):
    read = read_catalogue(catalogue)
    assert [r.id for r in read.rows] == ["m1", "m2", "m4"]
    assert [(p.line, p.kind) for p in read.problems] == [
        (4, "duplicate-id"),
        (5, "no-id"),
        (6, "no-text"),
        (8, "field-count"),
        (9, "not-utf8"),
        (10, "too-long"),
    ]
    assert read.problems[0].reason == "duplicate id 'm1' (first at line 2): the first is kept"
    assert read.ignored_columns == ["bad col"]
    first = read.rows[0]
    assert first.meta == {"price": 9.99, "audience": "kids"} and first.tags == ["Animation", "Children's", "Comedy"]
    assert first.text == "Toy Story (1995). Toys come alive when nobody looks. Animation, Children's, Comedy"
    lines = tmp_path / "items.jsonl"
    lines.write_text(
        '{"id": "a", "title": "Kind of Blue", "tags": ["jazz"], "year": 1959}\n'
        "not json\n"
        "[1, 2]\n"
        '{"id": "b", "title": "Nested", "extra": {"x": 1}}\n'
    )
    read = read_catalogue(lines)
    assert [r.id for r in read.rows] == ["a"] and read.rows[0].meta == {"year": 1959}
    assert [(p.line, p.kind) for p in read.problems] == [(2, "not-json"), (3, "not-json"), (4, "nested")]
    for bad, message in (("x.xlsx", "a catalogue is .csv"), ("none.csv", "cannot read")):
        with pytest.raises(EmbedderError, match=message):
            read_catalogue(tmp_path / bad)
    (tmp_path / "noid.csv").write_text("name,title\nx,y\n")
    with pytest.raises(EmbedderError, match="no 'id' column"):
        read_catalogue(tmp_path / "noid.csv")


def test_imported_items_are_searchable_filterable_and_join_the_log(catalogue, tmp_path):
    settings = load_settings(store=str(tmp_path / "store"), models="tiny", device="cpu")
    with Library.open(settings) as lib:
        report = import_catalogue(catalogue, settings, lib.media, lambda: lib.encoders)
        assert (report["created"], report["problems"], report["problems_by_kind"]["not-utf8"]) == (3, 6, 1)
        point = lib.media.retrieve([item_point_id("m2")], with_vectors=["text", "content", "lexical"])[0]
        assert set(point.vectors) == {"text", "content", "lexical"} and point.payload["item"] == "m2"
        assert point.payload["modalities"] == ["text"] and point.payload["meta"]["price"] == 12.5
        hits = lib.search("spy satellite", mode="lexical")
        assert [h.item for h in hits] == ["m2"] and hits[0].title == "GoldenEye (1995)"
        cheap = lib.search("action", filters=["meta.price<10"], mode="lexical")
        assert [h.item for h in cheap] == ["m4"]  # GoldenEye costs 12.5
        adults = lib.search("film", filters=["meta.audience=adults"], mode="dense", limit=10)
        assert sorted(h.item for h in adults) == ["m2", "m4"]
        # Events on a catalogue id land on the catalogue's point: one item, not two.
        lib.add_events([("ann", "m2", 1.0), ("ann", "m4", 1.0), ("bob", "m2", 1.0), ("bob", "m1", 1.0)])
        assert lib.media.count() == 3
        recs = lib.recommend("carl_new", strategy="popular", limit=3)
        assert recs.items[0].id == item_point_id("m2")  # two users liked it
        content = lib.recommend("ann", strategy="content", limit=3)
        assert [r.id for r in content.items] == [item_point_id("m1")]  # the only one ann has not seen
        # Importing again: unchanged rows are not encoded again, and nothing stored is lost.
        lib.media.set_payload([item_point_id("m2")], {"popularity": 2.0})

        def no_models():
            raise AssertionError("nothing changed: no model should load")

        again = import_catalogue(catalogue, settings, lib.media, no_models)
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
        assert lib.media.retrieve([item_point_id("m2")])[0].payload["popularity"] == 2.0
        changed = tmp_path / "changed.csv"
        changed.write_text(CSV.replace("A spy thriller", "A secret agent story"))
        third = import_catalogue(changed, settings, lib.media, lambda: lib.encoders)
        assert third["updated"] == 1 and third["unchanged"] == 2
        assert [h.item for h in lib.search("secret agent", mode="lexical")] == ["m2"]
        assert lib.search("spy", mode="lexical") == []


def test_the_import_command(catalogue, tmp_path, in_process_server):
    env = {"EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_MODELS": "tiny"}
    dry = json.loads(run_cli("items", "import", catalogue, "--dry-run", "--json", env=env).stdout)
    assert dry["dry_run"] is True and dry["rows"] == 3 and dry["created"] == 0
    shown = run_cli("items", "import", catalogue, env=env).stdout
    assert "imported 3 rows" in shown and "3 new" in shown and "6 rows with problems" in shown
    assert "line 9: not UTF-8 (byte 0xe9 at column 7)" in shown and "ignored column 'bad col'" in shown
    missing = run_cli("items", "import", tmp_path / "nope.csv", env=env, code=2).stderr
    assert missing.strip() == f"error: {tmp_path / 'nope.csv'}: no such catalogue file"
    # The same on a Qdrant server store.
    settings = load_settings(store=in_process_server, models="tiny", device="cpu")
    with Library.open(settings) as lib:
        assert import_catalogue(catalogue, settings, lib.media, lambda: lib.encoders)["created"] == 3
        assert [h.item for h in lib.search("robbers", mode="lexical")] == ["m4"]
