"""`embedder items thumbnails`: the previews items lack, made from their files without re-encoding."""

import json
import shutil

from tests.cli_runner import run_cli


def test_missing_thumbnails_are_made_once_and_gone_files_reported(tmp_path, media):
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("h264.mp4", "tone.mp3", "vp9.webm"):
        shutil.copy(media[name], folder / name)
    env = {
        "EMBEDDER_STORE": str(tmp_path / "store"),
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_WORKERS": "1",
        "EMBEDDER_THUMBNAILS": "false",
    }  # as an older version ingested: no previews
    run_cli("ingest", folder, "--quiet", env=env)
    previews = tmp_path / "store" / "thumbnails" / "media"
    assert not previews.exists() or not list(previews.iterdir())
    before = {r["id"]: r for r in json.loads(run_cli("search", "x", "--json", env=env).stdout)["hits"]}

    (folder / "vp9.webm").unlink()  # an item whose file is gone cannot get one
    report = json.loads(run_cli("items", "thumbnails", "--json", env=env).stdout)
    assert report["made"] == 2 and report["already"] == 0 and len(report["no_file"]) == 1 and not report["failed"]
    assert [p.read_bytes()[:2] for p in previews.iterdir()] == [b"\xff\xd8"] * 2  # two JPEGs
    again = json.loads(run_cli("items", "thumbnails", "--json", env=env).stdout)
    assert again["made"] == 0 and again["already"] == 2
    redo = json.loads(run_cli("items", "thumbnails", "--all", "--json", env=env).stdout)
    assert redo["made"] == 2
    after = {r["id"]: r for r in json.loads(run_cli("search", "x", "--json", env=env).stdout)["hits"]}
    assert after == before  # vectors and payloads untouched
