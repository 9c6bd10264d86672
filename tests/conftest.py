"""Shared fixtures: real media generated with ffmpeg once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

SHIPPED_MEDIA = Path(__file__).resolve().parent / "data"
# Speech recognition costs about half a file's duration; the tests that are about it turn it on
# (tests/media/test_speech.py, tests/test_lexical_search.py), the rest ingest without it. Set here
# too, not only per test: module-scoped fixtures build their settings before per-test fixtures run.
os.environ["EMBEDDER_SPEECH_MODEL"] = "none"


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; fail the test run loudly if a fixture cannot be made."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)


def _testsrc(seconds: float, size: str = "96x64", rate: int = 10) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate={rate}"]


def _sine(seconds: float, freq: int = 440, rate: int = 44100) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}:sample_rate={rate}"]


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_media(media: dict[str, Path], names, folder: Path) -> Path:
    """A fresh folder holding copies of the named generated files."""
    folder.mkdir()
    for name in names:
        shutil.copy(media[name], folder / name)
    return folder


def make_media(root: Path) -> dict[str, Path]:
    """Write every case the media layer must handle into ``root``; return them by name."""
    root.mkdir(parents=True, exist_ok=True)
    p = {
        name: root / name
        for name in (
            "h264.mp4",
            "hevc.mp4",
            "av1.mkv",
            "vp9.webm",
            "h264_10bit.mp4",
            "vfr.mp4",
            "long.mp4",
            "multistream.mkv",
            "video_only.mp4",
            "scene.mp4",
            "tone.mp3",
            "tone.wav",
            "tone.flac",
            "tone.ogg",
            "tone.m4a",
            "zero.mp4",
            "truncated.mp4",
            "truncated_faststart.mp4",
            "fake.mp4",
        )
    }
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    ffmpeg(*_testsrc(3), *_sine(3), *x264, "-c:a", "aac", "-shortest", str(p["h264.mp4"]))
    ffmpeg(
        *_testsrc(2),
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=error",
        "-tag:v",
        "hvc1",
        "-pix_fmt",
        "yuv420p",
        str(p["hevc.mp4"]),
    )
    ffmpeg(*_testsrc(1), "-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p", str(p["av1.mkv"]))
    ffmpeg(
        *_testsrc(2),
        *_sine(2, rate=48000),
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-c:a",
        "libopus",
        "-shortest",
        str(p["vp9.webm"]),
    )
    ffmpeg(
        *_testsrc(2),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-profile:v",
        "high10",
        "-pix_fmt",
        "yuv420p10le",
        str(p["h264_10bit.mp4"]),
    )
    # Variable frame rate: 10 frames 0.05 s apart, then frames 0.25 s apart.
    ffmpeg(
        *_testsrc(3, rate=20),
        "-vf",
        "setpts='if(lt(N,10),N*0.05,0.5+(N-10)*0.25)/TB'",
        "-vsync",
        "vfr",
        *x264,
        str(p["vfr.mp4"]),
    )
    ffmpeg(*_testsrc(20, size="64x48", rate=5), *x264, str(p["long.mp4"]))
    ffmpeg(
        *_testsrc(2, size="64x48"),
        *_testsrc(2, size="128x96", rate=15),
        *_sine(2, 300),
        *_sine(2, 600),
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-map",
        "3",
        *x264,
        "-c:a",
        "aac",
        str(p["multistream.mkv"]),
    )
    ffmpeg(*_testsrc(2), *x264, str(p["video_only.mp4"]))
    # One cut at 1 s: red, then blue.
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:size=96x64:rate=10:duration=1",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:size=96x64:rate=10:duration=1",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1:a=0",
        *x264,
        str(p["scene.mp4"]),
    )
    for name, codec in (
        ("tone.mp3", "libmp3lame"),
        ("tone.wav", "pcm_s16le"),
        ("tone.flac", "flac"),
        ("tone.ogg", "libvorbis"),
        ("tone.m4a", "aac"),
    ):
        ffmpeg(*_sine(12.5), "-ac", "2", "-c:a", codec, str(p[name]))
    p["zero.mp4"].write_bytes(b"")
    data = p["h264.mp4"].read_bytes()
    p["truncated.mp4"].write_bytes(data[: len(data) // 3])  # the index (moov) is lost: probe fails
    ffmpeg(*_testsrc(3), *x264, "-movflags", "+faststart", str(root / "faststart.mp4"))
    data = (root / "faststart.mp4").read_bytes()
    (root / "faststart.mp4").unlink()
    p["truncated_faststart.mp4"].write_bytes(data[: len(data) // 2])  # index intact, frames missing
    p["fake.mp4"].write_text("this is a text file, not a video\n")
    return p


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required for the tests; run scripts/setup.sh")
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def real_media() -> Path:
    """Real media that no one on this project wrote, shipped with the tests (see tests/data/README.md)."""
    return SHIPPED_MEDIA


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Tests never read the developer's config or store."""
    for key in list(os.environ):
        if key.startswith("EMBEDDER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EMBEDDER_SPEECH_MODEL", "none")  # see the top of this file
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def in_process_server():
    """A store URL served by qdrant-client's in-process engine (the server back-end's test double):
    every store opened on it in this process shares one ``QdrantClient(":memory:")``."""
    from qdrant_client import QdrantClient

    from embedder.store.server import share_client

    url = "http://in-process.test:6333"
    client = QdrantClient(":memory:")
    share_client(url, client)
    yield url
    share_client(url, None)
    client.close()


SERVED_NAMES = ("h264.mp4", "tone.mp3", "vp9.webm")


@pytest.fixture
def served(tmp_path, media):
    """A real uvicorn server over a tiny-preset library of three ingested files: (client, library,
    media folder, item id by file name)."""
    import httpx
    import uvicorn

    from embedder import Library
    from embedder.service import create_app
    from embedder.settings import load_settings

    folder = tmp_path / "media"
    folder.mkdir()
    for name in SERVED_NAMES:
        shutil.copy(media[name], folder / name)
    settings = load_settings(store=str(tmp_path / "store"), models="tiny", device="cpu", workers=1, max_frames=2)
    library = Library.open(settings)
    library.ingest([folder])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(library, max_upload_mb=1), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.get("/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail("the server did not become ready")
    ids = {r.payload["path"].rsplit("/", 1)[-1]: r.id for r in library.media.scroll()}
    yield client, library, folder, ids
    client.close()
    server.should_exit = True
    thread.join(10)
    library.close()
