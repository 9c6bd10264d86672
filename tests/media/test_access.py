"""Serving reads a stored path only while it is still the file ingested (embedder.media.access).

Each test replays one way a name can be re-pointed after ingest (the file-disclosure campaign's
cases): a swapped symlink, a hard link, a symlinked parent folder, a FIFO, changed content; and
the legitimate changes that must keep working (a touch, a link inside the root at ingest).
"""

import hashlib
import os
from pathlib import Path

import pytest

from embedder.media.access import NotServable, open_inside, open_recorded, open_without_links
from embedder.media.discover import discover


def _ingested(root: Path, name: str = "clip.mp4", data: bytes = b"\x00\x00\x00\x18ftypisom" + b"v" * 5000):
    """A media-looking file under ``root`` as discovery records it: (path, identity, sha256)."""
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    found = {str(f.path): f for f in discover([root]).files}[str(target)]
    return str(target), found.identity(), found.sha256


@pytest.fixture
def secret(tmp_path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "passwd"
    path.write_bytes(b"root:x:0:0:secret" * 300)
    return path


def _read(path, identity, sha) -> bytes:
    fh, _ = open_recorded(path, identity, sha)
    with fh:
        return fh.read()


def test_the_ingested_file_is_served_as_it_is(tmp_path):
    path, identity, sha = _ingested(tmp_path / "media")
    assert identity.ino and identity.real == os.path.realpath(path) and identity.root == str(tmp_path / "media")
    assert hashlib.sha256(_read(path, identity, sha)).hexdigest() == sha


def test_a_file_swapped_for_a_symlink_to_a_secret_is_refused(tmp_path, secret):
    path, identity, sha = _ingested(tmp_path / "media")
    os.unlink(path)
    os.symlink(secret, path)
    with pytest.raises(NotServable, match="now leads to"):
        _read(path, identity, sha)
    os.unlink(path)
    os.symlink("/etc/passwd", path)
    with pytest.raises(NotServable, match="now leads to"):
        _read(path, identity, sha)


def test_a_file_swapped_for_a_hard_link_to_a_secret_is_refused(tmp_path, secret):
    path, identity, sha = _ingested(tmp_path / "media")
    os.unlink(path)
    os.link(secret, path)
    with pytest.raises(NotServable):
        _read(path, identity, sha)


def test_a_hard_link_of_the_same_size_and_mtime_is_refused_by_inode_then_content(tmp_path, secret):
    data = b"\x00\x00\x00\x18ftypisom" + b"v" * 5000
    path, identity, sha = _ingested(tmp_path / "media", data=data)
    secret.write_bytes(b"S" * len(data))
    os.utime(secret, ns=(identity.mtime_ns, identity.mtime_ns))
    os.unlink(path)
    os.link(secret, path)
    with pytest.raises(NotServable, match="not the file that was ingested"):
        _read(path, identity, sha)


def test_a_parent_folder_swapped_for_a_symlink_is_refused(tmp_path, secret):
    path, identity, sha = _ingested(tmp_path / "media", name="sub/clip.mp4")
    sub = tmp_path / "media" / "sub"
    os.rename(sub, tmp_path / "moved")
    (secret.parent / "clip.mp4").write_bytes(Path(tmp_path / "moved" / "clip.mp4").read_bytes())
    os.symlink(secret.parent, sub)  # the same bytes, but through a link out of the root
    with pytest.raises(NotServable, match="now leads to"):
        _read(path, identity, sha)


def test_a_link_swapped_in_between_the_check_and_the_open_is_not_followed(tmp_path, secret):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"x")
    os.symlink(secret.parent, tmp_path / "link")
    with pytest.raises(OSError):
        open_without_links(str(tmp_path / "link" / "passwd"))
    os.symlink(secret, tmp_path / "real" / "g")
    with pytest.raises(OSError):
        open_without_links(str(tmp_path / "real" / "g"))
    os.close(open_without_links(str(tmp_path / "real" / "f")))


def test_content_changed_in_place_is_refused_and_a_touch_is_not(tmp_path):
    path, identity, sha = _ingested(tmp_path / "media")
    os.utime(path, ns=(identity.mtime_ns + 10**9, identity.mtime_ns + 10**9))  # touched: re-hashed, same content
    assert hashlib.sha256(_read(path, identity, sha)).hexdigest() == sha
    with open(path, "r+b") as fh:
        fh.seek(100)
        fh.write(b"EVIL")
    with pytest.raises(NotServable, match="not the file that was ingested"):
        _read(path, identity, sha)
    with open(path, "ab") as fh:
        fh.write(b"more")
    with pytest.raises(NotServable, match="bytes, not the"):
        _read(path, identity, sha)


def test_a_fifo_at_the_path_is_refused_without_blocking(tmp_path):
    path, identity, sha = _ingested(tmp_path / "media")
    os.unlink(path)
    os.mkfifo(path)
    with pytest.raises(NotServable):
        _read(path, identity, sha)


def test_a_symlink_inside_the_root_at_ingest_is_served(tmp_path):
    root = tmp_path / "media"
    data = b"\x00\x00\x00\x18ftypisom" + b"w" * 3000
    _ingested(root, name="store/real.mp4", data=data)
    os.symlink("store/real.mp4", root / "alias.mp4")
    found = {str(f.path): f for f in discover([root]).files}
    # Discovery takes each real file once: the alias or the original, whichever it reached first.
    ((path, f),) = found.items()
    assert _read(path, f.identity(), f.sha256) == data


def test_an_item_stored_before_identities_is_served_only_after_a_re_hash(tmp_path, secret):
    from embedder.media.access import FileIdentity

    path, identity, sha = _ingested(tmp_path / "media")
    legacy = FileIdentity(size=identity.size, mtime_ns=identity.mtime_ns)
    assert hashlib.sha256(_read(path, legacy, sha)).hexdigest() == sha
    os.unlink(path)
    secret.write_bytes(b"S" * identity.size)
    os.symlink(secret, path)
    with pytest.raises(NotServable, match="not the file that was ingested"):
        _read(path, legacy, sha)


def test_previews_are_read_only_as_regular_files_inside_their_folder(tmp_path, secret):
    folder = tmp_path / "thumbs"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    fh, _ = open_inside(str(folder / "a.jpg"), str(folder))
    with fh:
        assert fh.read() == b"\xff\xd8jpeg"
    os.symlink(secret, folder / "b.jpg")
    with pytest.raises(NotServable, match="is a link"):
        open_inside(str(folder / "b.jpg"), str(folder))
    os.symlink(secret.parent, folder / "x.moments")
    with pytest.raises(NotServable, match="is a link"):
        open_inside(str(folder / "x.moments" / "passwd"), str(folder))
    # The folder itself may sit behind a link (a store on a mounted disk).
    os.symlink(folder, tmp_path / "linked")
    fh, _ = open_inside(str(tmp_path / "linked" / "a.jpg"), str(tmp_path / "linked"))
    fh.close()
