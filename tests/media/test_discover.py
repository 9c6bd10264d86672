import hashlib
import os

import pytest

from embedder.media.discover import discover, sniff_container


def test_sniff_reads_content_not_extension(media):
    assert sniff_container(media["h264.mp4"].read_bytes()[:512]) == ("video", "mp4")
    assert sniff_container(media["tone.wav"].read_bytes()[:512]) == ("audio", "wav")
    assert sniff_container(media["tone.flac"].read_bytes()[:512]) == ("audio", "flac")
    assert sniff_container(media["vp9.webm"].read_bytes()[:512]) == ("video", "matroska")
    assert sniff_container(media["fake.mp4"].read_bytes()[:512]) == ("other", "text")
    assert sniff_container(b"") == ("other", "empty")


def test_walk_is_sorted_hashes_and_skips_hidden_partial_and_text(tmp_path, media):
    root = tmp_path / "lib"
    (root / "b").mkdir(parents=True)
    (root / ".cache").mkdir()
    data = media["h264.mp4"].read_bytes()
    for rel in ("b/z.mp4", "a.mp4", ".hidden.mp4", ".cache/c.mp4", "d.mp4.part", "e.crdownload"):
        (root / rel).write_bytes(data)
    (root / "renamed.bin").write_bytes(media["tone.mp3"].read_bytes())  # media without a media extension
    (root / "notes.mp4").write_text("not a video")
    found = discover([root])
    names = [f.path.relative_to(root).as_posix() for f in found.files]
    assert names == ["a.mp4", "b/z.mp4", "renamed.bin"]
    assert found.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert found.files[0].size == len(data)
    assert found.files[2].kind == "audio"
    reasons = {os.path.relpath(s.path, root): s.reason for s in found.skipped}
    assert reasons[".hidden.mp4"] == "hidden"
    assert reasons[".cache"] == "hidden"
    assert reasons["d.mp4.part"] == "partial download"
    assert reasons["e.crdownload"] == "partial download"
    assert reasons["notes.mp4"] == "not audio or video (content: text)"
    with_hidden = discover([root], include_hidden=True)
    assert len(with_hidden.files) == 7


def test_symlink_loops_and_links_leaving_root_are_not_followed(tmp_path, media):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(media["h264.mp4"].read_bytes())
    root = tmp_path / "lib"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "v.mp4").write_bytes(media["h264.mp4"].read_bytes())
    (root / "sub" / "loop").symlink_to(root)  # directory loop back to the root
    (root / "self").symlink_to(root / "self")  # a link to itself
    (root / "escape").symlink_to(outside)
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "inside.mp4").symlink_to(root / "sub" / "v.mp4")  # same file twice: taken once
    found = discover([root])
    assert [f.path.name for f in found.files] == ["inside.mp4"]
    reasons = {os.path.relpath(s.path, root): s.reason for s in found.skipped}
    assert reasons["escape"] == "symlink leaves the root"
    assert reasons["escape.mp4"] == "symlink leaves the root"
    assert reasons["self"] == "symlink loop"
    assert reasons["sub/loop"] == "symlink loop or folder already walked"
    assert reasons["sub/v.mp4"] == "same file already found through another path"


def test_single_files_and_missing_paths(tmp_path, media):
    found = discover([media["tone.ogg"], tmp_path / "missing.mp4"])
    assert [f.path for f in found.files] == [media["tone.ogg"]]
    assert found.skipped[0].reason == "does not exist"


def test_hostile_paths_never_hang_and_are_named(tmp_path, media):
    import json

    import pytest

    from embedder.media.discover import DiscoveryLimitError

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "ok.mp4").write_bytes(media["h264.mp4"].read_bytes())
    os.mkfifo(lib / "pipe.mp4")  # opening a FIFO would block for ever
    os.close(os.open(os.fsencode(lib) + b"/caf\xe9.mp4", os.O_CREAT | os.O_WRONLY))  # Latin-1 name
    (lib / "proc").symlink_to("/proc")  # leaves the root: not followed
    found = discover([lib])
    assert [f.path.name for f in found.files] == ["ok.mp4"]
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons[str(lib / "pipe.mp4")] == "not a regular file"
    assert reasons[f"{lib}/caf\\xe9.mp4"] == "file name is not valid UTF-8; rename it to ingest it"
    assert reasons[str(lib / "proc")] == "symlink leaves the root"
    json.dumps([s.__dict__ for s in found.skipped])  # every reported path serialises

    # A root that *is* a link to a kernel filesystem is not entered (its files block on read).
    (tmp_path / "kernel").symlink_to("/proc")
    assert [s.reason for s in discover([tmp_path / "kernel"]).skipped] == ["kernel or virtual filesystem (not media)"]
    # A root that is much bigger than meant stops with a clear error.
    (tmp_path / "usr").symlink_to("/usr")
    with pytest.raises(
        DiscoveryLimitError, match=r"passed 50 files \(discover_max_files\); is this the folder you meant"
    ):
        discover([tmp_path / "usr"], max_files=50)
    with pytest.raises(DiscoveryLimitError, match=r"took over 1e-09 s \(discover_timeout_s\)"):
        discover([lib], timeout_s=1e-9)


def test_a_link_to_the_whole_filesystem_is_refused_at_once(tmp_path):
    from embedder.media.discover import DiscoveryLimitError, discover

    os.symlink("/", tmp_path / "everything")
    for root in ("/", tmp_path / "everything"):
        with pytest.raises(DiscoveryLimitError, match="is the whole filesystem"):
            discover([root])


def test_a_long_walk_reports_progress_and_stops_at_its_limit(tmp_path, monkeypatch):
    import embedder.media.discover as discovery

    for i in range(30):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "x.txt").write_text("x")
    monkeypatch.setattr(discovery, "PROGRESS_EVERY_S", 0.0)
    heard: list[str] = []
    discovery.discover([tmp_path], on_progress=heard.append, media_only=False, timeout_s=600)
    assert heard and heard[-1].startswith(f"discovering under {tmp_path}: ") and "discover_timeout_s" in heard[-1]
    with pytest.raises(discovery.DiscoveryLimitError, match="took over"):
        discovery.discover([tmp_path], timeout_s=1e-9)
    from embedder.settings import load_settings

    assert load_settings().discover_timeout_s == 600
