"""What a running ``embedder serve`` reads from disk for a client: only the files it ingested or
wrote, however their names were re-pointed afterwards (the file-disclosure campaign, replayed
over HTTP against a real server)."""

import logging
import os
import shutil

import pytest


def _secret(tmp_path, size: int = 4000):
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    path = outside / "secret.txt"
    path.write_bytes((b"TOP-SECRET " * size)[:size])
    return path


def test_media_swapped_for_a_symlink_to_etc_passwd_is_404_with_a_reason_in_the_log(served, caplog):
    client, _, folder, ids = served
    url = f"/items/{ids['h264.mp4']}/media"
    assert client.get(url).content == (folder / "h264.mp4").read_bytes()
    os.unlink(folder / "h264.mp4")
    os.symlink("/etc/passwd", folder / "h264.mp4")
    with caplog.at_level(logging.WARNING, logger="embedder.serve"):
        refused = client.get(url)
        ranged = client.get(url, headers={"Range": "bytes=0-99"})
    assert refused.status_code == 404 and ranged.status_code == 404
    assert b"root:" not in refused.content + ranged.content
    assert "still the file ingested" in refused.json()["error"]
    logged = [r.getMessage() for r in caplog.records if r.name == "embedder.serve"]
    assert any("now leads to /etc/passwd" in m and "\n" not in m for m in logged)


def test_media_swapped_for_a_hard_link_is_404(served, tmp_path):
    client, _, folder, ids = served
    secret = _secret(tmp_path, size=(folder / "tone.mp3").stat().st_size)  # same size: only inode and hash tell
    os.unlink(folder / "tone.mp3")
    os.link(secret, folder / "tone.mp3")
    answer = client.get(f"/items/{ids['tone.mp3']}/media")
    assert answer.status_code == 404 and b"TOP-SECRET" not in answer.content


def test_media_under_a_parent_folder_swapped_for_a_symlink_is_404(served, tmp_path):
    client, _, folder, ids = served
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("h264.mp4", "vp9.webm"):  # what the names lead to now: other files, one the same bytes
        shutil.copy(_secret(tmp_path), elsewhere / name)
    shutil.copy(folder / "tone.mp3", elsewhere / "tone.mp3")
    os.rename(folder, tmp_path / "original")
    os.symlink(elsewhere, folder)
    for name in ("h264.mp4", "vp9.webm", "tone.mp3"):
        answer = client.get(f"/items/{ids[name]}/media")
        assert answer.status_code == 404, name
        assert b"TOP-SECRET" not in answer.content


def test_touched_media_is_still_served_with_ranges(served):
    client, _, folder, ids = served
    path = folder / "vp9.webm"
    data = path.read_bytes()
    os.utime(path, (1_000_000, 1_000_000))  # a backup tool's restore: same bytes, another mtime
    part = client.get(f"/items/{ids['vp9.webm']}/media", headers={"Range": "bytes=5-54"})
    assert part.status_code == 206 and part.content == data[5:55]
    assert part.headers["content-range"] == f"bytes 5-54/{len(data)}"
    two = client.get(f"/items/{ids['vp9.webm']}/media", headers={"Range": "bytes=0-3,10-13"})
    assert two.status_code == 206 and data[:4] in two.content and data[10:14] in two.content
    assert (
        client.get(f"/items/{ids['vp9.webm']}/media", headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416
    )


def test_media_rewritten_in_place_is_404(served):
    client, _, folder, ids = served
    path = folder / "h264.mp4"
    stamp = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(200)
        fh.write(b"X" * 16)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the mtime put back, as an attacker would
    assert client.get(f"/items/{ids['h264.mp4']}/media").status_code == 404


def test_a_thumbnail_swapped_for_a_symlink_is_404(served, tmp_path):
    client, library, _, ids = served
    from embedder.media.thumbnail import ThumbnailStore

    thumbs = ThumbnailStore(library.settings.thumbnails_dir)
    url = f"/items/{ids['h264.mp4']}/thumbnail"
    assert client.get(url).content[:2] == b"\xff\xd8"
    target = thumbs.path(ids["h264.mp4"])
    os.unlink(target)
    os.symlink(_secret(tmp_path), target)
    answer = client.get(url)
    assert answer.status_code == 404 and b"TOP-SECRET" not in answer.content
    moment = thumbs.moments_dir(ids["h264.mp4"]) / "0.jpg"
    os.unlink(moment)
    os.symlink("/etc/passwd", moment)
    assert client.get(f"/items/{ids['h264.mp4']}/moments/0/thumbnail").status_code == 404


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a\nb.mp4", "x" * 300 + ".mp4"])
def test_upload_names_cannot_place_the_file_anywhere(served, media, name):
    client, _, _, ids = served
    with open(media["h264.mp4"], "rb") as fh:
        answer = client.post("/search/file", files={"file": (name, fh, "video/mp4")})
    assert answer.status_code == 200  # decoded from the upload's own private file: the ingested item's neighbours
    assert answer.json()["hits"] == client.get(f"/items/{ids['h264.mp4']}/like").json()["hits"]


def test_media_answers_head_and_plays_inline(served):
    client, _, folder, ids = served
    url = f"/items/{ids['vp9.webm']}/media"
    head = client.head(url)
    size = (folder / "vp9.webm").stat().st_size
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == size
    assert head.headers["accept-ranges"] == "bytes"
    got = client.get(url)
    assert (
        got.headers["content-disposition"] == 'inline; filename="vp9.webm"'
        and got.headers["content-type"] == "video/webm"
    )


def test_the_api_docs_render_offline_in_a_real_browser(served, tmp_path):
    """/docs used Swagger UI from a CDN: blank on a machine without internet (as this one is)."""
    import subprocess

    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if browser is None:
        pytest.skip("no chromium: scripts/setup.sh installs chromium-headless-shell")
    client, *_ = served
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "swagger-ui-bundle.js" in page
    shot = tmp_path / "docs.png"
    args = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1200,900",
        "--virtual-time-budget=15000",
    ]
    dom = subprocess.run([*args, "--dump-dom", f"{client.base_url}/docs"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'class="swagger-ui' in dom.stdout and "/users/{user}/recommendations" in dom.stdout
    assert "Failed to load API definition" not in dom.stdout
    subprocess.run([*args, f"--screenshot={shot}", f"{client.base_url}/docs"], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a page with content, not a blank one
