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
        again.media


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
        with pytest.raises(EmbedderError, match="unknown strategy 'magic'; choose from hybrid, cf, content, trained, popular"):
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
    block = re.search(r"```python\n(.*?)```", text[text.index("## Python API"):], re.S)
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
