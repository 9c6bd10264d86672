"""embedder serve: the HTTP API over a real uvicorn server, real store and tiny models."""

import concurrent.futures
import shutil
import socket
import threading
import time

import httpx
import pytest

NAMES = ("h264.mp4", "tone.mp3", "vp9.webm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, media):
    import uvicorn

    from embedder import Library
    from embedder.service import create_app
    from embedder.settings import load_settings

    folder = tmp_path / "media"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(media[name], folder / name)
    settings = load_settings(store=str(tmp_path / "store"), models="tiny", device="cpu", workers=1, max_frames=2)
    library = Library.open(settings)
    library.ingest([folder])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(library, max_upload_mb=1), host="127.0.0.1", port=port,
                                           log_level="warning"))
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


def test_search_events_and_recommendations_are_the_library_calls(served):
    client, library, folder, ids = served
    assert client.get("/health").json() == {"status": "ok"}
    found = client.get("/search", params={"q": "a test pattern", "limit": 3}).json()
    assert found["hits"] == [h.to_dict() for h in library.search("a test pattern", limit=3)]  # same as the CLI
    assert {"visual", "audio", "text"} & set(found["hits"][0]["scores"])
    only_video = client.get("/search", params={"q": "x", "filter": "kind=video"}).json()["hits"]
    assert {h["path"].rsplit("/", 1)[-1] for h in only_video} == {"h264.mp4", "vp9.webm"}
    like = client.get(f"/items/{ids['h264.mp4']}/like").json()["hits"]
    assert ids["h264.mp4"] not in {h["id"] for h in like} and len(like) == 2
    bad = client.get("/search", params={"q": "x", "filter": "colour=red"})
    assert bad.status_code == 400 and "unknown key 'colour'" in bad.json()["error"]

    assert client.get("/users/alice/recommendations").json()["used"] == ["popular"]
    posted = client.post("/events", json=[{"user": "alice", "item": ids["vp9.webm"], "weight": 1}])
    assert posted.json()["received"] == posted.json()["added"] == 1
    recs = client.get("/users/alice/recommendations", params={"strategy": "content"}).json()
    # The event counts at the very next call: the content branch uses it, the item is seen.
    assert recs["used"] == ["content"] and ids["vp9.webm"] not in {r["id"] for r in recs["items"]}
    assert client.post("/events", json={"item": "x"}).status_code == 422
    similar = client.get(f"/items/{ids['h264.mp4']}/similar", params={"limit": 2}).json()
    assert len(similar["items"]) == 2 and similar["by"] == "content"
    details = client.get(f"/items/{ids['tone.mp3']}").json()
    assert details["payload"]["kind"] == "audio" and "content" in details["vectors"]
    schema = client.get("/openapi.json").json()
    assert {"/search", "/events", "/users/{user}/recommendations", "/ingest", "/metrics"} <= set(schema["paths"])


def test_media_is_served_with_ranges_and_only_for_ingested_items(served):
    client, _, folder, ids = served
    data = (folder / "h264.mp4").read_bytes()
    part = client.get(f"/items/{ids['h264.mp4']}/media", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == data[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(data)}"
    assert client.get(f"/items/{ids['h264.mp4']}/media").content == data
    assert client.get("/items/..%2F..%2Fetc%2Fpasswd/media").status_code == 404
    assert client.get("/items/00000000-0000-0000-0000-000000000000/media").status_code == 404


def test_upload_search_finds_the_same_file_and_refuses_big_ones(served, media):
    client, _, _, ids = served
    with open(media["h264.mp4"], "rb") as fh:  # already ingested (same bytes): its neighbours, as --like
        found = client.post("/search/file", files={"file": ("clip.mp4", fh, "video/mp4")}).json()
    assert found["hits"] == client.get(f"/items/{ids['h264.mp4']}/like").json()["hits"]
    with open(media["hevc.mp4"], "rb") as fh:  # a new file: decoded and encoded on the fly
        new = client.post("/search/file", files={"file": ("new.mp4", fh, "video/mp4")}).json()["hits"]
    assert len(new) == 3 and new[0]["score"] >= new[-1]["score"] and "visual" in new[0]["scores"]
    big = client.post("/search/file", files={"file": ("big.mp4", b"\0" * 1_100_000, "video/mp4")})
    assert big.status_code == 413
    broken = client.post("/search/file", files={"file": ("broken.mp4", b"not a video", "video/mp4")})
    assert broken.status_code == 400 and "upload.mp4" in broken.json()["error"]  # the file, the stage, the reason


def test_ingest_job_runs_while_searches_are_answered_and_metrics_count_them(served, media, tmp_path):
    client, _, _, _ = served
    more = tmp_path / "more"
    more.mkdir()
    for name in ("hevc.mp4", "tone.wav", "scene.mp4"):
        shutil.copy(media[name], more / name)
    job = client.post("/ingest", json={"paths": [str(more)]})
    assert job.status_code == 202
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # reads while the job writes
        codes = list(pool.map(lambda _: client.get("/search", params={"q": "tone"}).status_code, range(12)))
    assert codes == [200] * 12
    deadline = time.monotonic() + 120
    while (state := client.get(f"/jobs/{job.json()['id']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["state"] == "done" and state["done"] == state["total"] == 3
    assert state["summary"]["counts"]["new"] == 3
    metrics = client.get("/metrics").text
    assert 'embedder_requests_total{method="GET",route="/search",status="200"}' in metrics
    assert "embedder_store_points 6.0" in metrics
    assert client.get("/jobs/nope").status_code == 404


def test_a_cli_command_on_a_served_store_is_told_where_the_server_is(tmp_path, media):
    import os
    import signal
    import subprocess
    import sys

    from tests.cli_runner import run_cli

    store = tmp_path / "store"
    env = {"EMBEDDER_STORE": str(store), "EMBEDDER_MODELS": "tiny", "EMBEDDER_DEVICE": "cpu"}
    run_cli("ingest", media["h264.mp4"], "--quiet", env=env)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "embedder.cli", "serve", "--port", str(port)],
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
            time.sleep(0.2)
        assert (store / ".serve.json").is_file()
        refused = run_cli("search", "x", env=env, code=2)
        assert refused.stderr.strip().endswith(f"is held by 'embedder serve' (pid {server.pid}) at "
                                               f"http://127.0.0.1:{port}: send requests to its HTTP API "
                                               f"(http://127.0.0.1:{port}/openapi.json), or stop it first")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    assert server.returncode == 0 and not (store / ".serve.json").exists()
    assert "Traceback" not in server.stderr.read()
    run_cli("search", "x", env=env)  # the store is free again
