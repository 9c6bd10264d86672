"""embedder serve: the HTTP API over a real uvicorn server, real store and tiny models."""

import concurrent.futures
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SERVED_NAMES as NAMES
from tests.conftest import free_port


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


def test_moments_and_personalised_search_through_the_api(served):
    client, library, _, ids = served
    found = client.get("/search", params={"q": "a test pattern", "moments": "true", "limit": 3}).json()
    local = [h.to_dict() for h in library.search("a test pattern", moments=True, limit=3)]
    assert found["moments"] is True and [h["id"] for h in found["hits"]] == [h["id"] for h in local]
    assert found["mode"] == "hybrid" and found["fusion"] == "rrf"  # the collection has a lexical index
    for hit, same in zip(found["hits"], local):
        # the moment is the dense side's best segment; the fused score adds both sides' shares
        assert hit["moment"]["score"] == pytest.approx(hit["sides"]["dense"])
        assert hit["moment"]["start"] == same["moment"]["start"]
        assert sum(hit["sides"]["fused"].values()) == pytest.approx(hit["score"], abs=2e-6)
        assert sum(hit["moment"]["contributions"].values()) == pytest.approx(hit["moment"]["score"], abs=1e-5)
        if hit["kind"] == "video":  # a preview per segment, served by URL, never a server path
            url = hit["moment"]["thumbnail"]
            assert url == f"/items/{hit['id']}/moments/0/thumbnail"
            picture = client.get(url)
            assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
    assert client.get(f"/items/{ids['h264.mp4']}/moments/7/thumbnail").status_code == 404
    like = client.get(f"/items/{ids['vp9.webm']}/like", params={"moments": "true"}).json()["hits"]
    assert like and all(h["moment"] for h in like)
    client.post("/events", json=[{"user": "dave", "item": ids["h264.mp4"], "weight": 1}])
    mine = client.get("/search", params={"q": "a test pattern", "user": "dave", "seen": "exclude"}).json()
    assert ids["h264.mp4"] not in {h["id"] for h in mine["hits"]} and all(h["personal"] for h in mine["hits"])
    plain = client.get("/search", params={"q": "a test pattern", "user": "nobody"}).json()["hits"]
    assert plain == client.get("/search", params={"q": "a test pattern"}).json()["hits"]
    bad = client.get("/search", params={"q": "x", "user": "dave", "seen": "hide"})
    assert bad.status_code == 400 and "--seen must be one of demote, exclude, keep" in bad.json()["error"]


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


def test_cli_commands_on_a_served_store_go_through_the_server(tmp_path, media):
    """Two terminals on one embedded store: serve holds it; search, status and ingest from the CLI
    succeed through it; a command the server does not offer says where the server is."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.cli_runner import run_cli

    store = tmp_path / "store"
    env = {"EMBEDDER_STORE": str(store), "EMBEDDER_MODELS": "tiny", "EMBEDDER_DEVICE": "cpu", "EMBEDDER_WORKERS": "1"}
    run_cli("ingest", media["h264.mp4"], "--quiet", env=env)
    local = json.loads(run_cli("search", "a test pattern", "--json", env=env).stdout)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "embedder.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_ready(port, server)
        assert (store / ".serve.json").is_file()
        through = run_cli("search", "a test pattern", "--json", env=env)
        assert json.loads(through.stdout) == local  # the same answer, from the server's warm models
        assert f"through embedder serve at http://127.0.0.1:{port}" in through.stderr
        added = json.loads(run_cli("ingest", media["tone.mp3"], media["vp9.webm"], "--json", env=env).stdout)
        assert added["counts"]["new"] == 2 and not added["failed"]
        assert json.loads(run_cli("status", "--json", env=env).stdout)["points"] == 3
        like = json.loads(run_cli("search", "--like", media["vp9.webm"], "--json", env=env).stdout)["hits"]
        assert [h["path"] for h in like][:1] == [str(media["h264.mp4"])] and len(like) == 2
        by_path = json.loads(run_cli("similar", media["vp9.webm"], "--json", env=env).stdout)  # a path: '/'s in the URL
        assert len(by_path["items"]) == 2 and media["vp9.webm"].name not in {
            os.path.basename(i["path"] or "") for i in by_path["items"]
        }
        missing = run_cli("ingest", tmp_path / "nowhere", env=env, code=2)
        assert "not found" in missing.stderr and "Traceback" not in missing.stderr
        refused = run_cli("trash", "list", env=env, code=2)  # not offered over HTTP: told where the server is
        assert refused.stderr.strip().endswith(
            f"is held by 'embedder serve' (pid {server.pid}) at "
            f"http://127.0.0.1:{port}: send requests to its HTTP API "
            f"(http://127.0.0.1:{port}/openapi.json), or stop it first"
        )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    assert server.returncode == 0 and not (store / ".serve.json").exists()
    assert "Traceback" not in server.stderr.read()
    assert "through embedder serve" not in run_cli("search", "x", env=env).stderr  # the store is free again


def test_a_dead_server_marker_is_ignored(tmp_path):
    from embedder.remote import served_by
    from embedder.settings import load_settings

    store = tmp_path / "store"
    store.mkdir()
    settings = load_settings(store=str(store))
    assert served_by(settings) is None
    dead = _reaped_pid()
    (store / ".serve.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": dead, "collection": "media"}))
    assert served_by(settings) is None  # killed with -9: the marker is stale
    (store / ".serve.json").write_text(
        json.dumps({"url": "http://127.0.0.1:9", "pid": os.getpid(), "collection": "other"})
    )
    assert served_by(settings) is None  # alive, but serving another collection
    (store / ".serve.json").write_text(
        json.dumps({"url": "http://127.0.0.1:9/", "pid": os.getpid(), "collection": "media"})
    )
    assert served_by(settings) == "http://127.0.0.1:9"
    assert served_by(load_settings(store=str(store), server="http://10.0.0.2:8080")) == "http://10.0.0.2:8080"


def _reaped_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_api_key_errors_and_limits(served):
    """Auth on (in-process client on the same library), every error a JSON message."""
    from fastapi.testclient import TestClient

    from embedder.service import create_app

    client, library, _, ids = served
    # auth off (the served app): a missing route, a bad parameter, too long a query, a big body
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    assert client.get("/search").json() == {"error": "query.q: Field required"}
    too_long = client.get("/search", params={"q": "x" * 1001})
    assert too_long.status_code == 422 and "at most 1000 characters" in too_long.json()["error"]
    huge = client.post(
        "/events", content=b"[" + b"{}," * 400_000 + b"{}]", headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413 and "over" in huge.json()["error"]
    for bad in ([], [{"user": "u", "item": ids["tone.mp3"], "weight": "NaN"}], [{"user": "u"}], "text"):
        answer = client.post("/events", json=bad)
        assert answer.status_code == 422 and answer.json()["error"], bad
    assert client.get("/users/nobody/recommendations", params={"strategy": "nope"}).status_code == 400
    assert client.post("/ingest", json={"paths": ["/x"], "removals": "everything"}).status_code == 422

    with TestClient(create_app(library, api_key="s3cret key", preload=False)) as keyed:
        assert keyed.get("/health").status_code == 200 and keyed.get("/").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cret"}):
            refused = keyed.get("/search", params={"q": "x"}, headers=headers)
            assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert keyed.get("/metrics").status_code == 401
        assert (
            keyed.get("/search", params={"q": "x"}, headers={"Authorization": "Bearer s3cret key"}).status_code == 200
        )
        assert keyed.get("/status", headers={"X-API-Key": "s3cret key"}).json()["points"] == 3
        keyed.cookies.set("embedder_api_key", "s3cret%20key")  # what the page stores for <img> and <video>
        assert keyed.get(f"/items/{ids['h264.mp4']}/thumbnail").status_code == 200


def test_binding_beyond_loopback_needs_a_key(tmp_path):
    from tests.cli_runner import run_cli

    env = {"EMBEDDER_STORE": str(tmp_path / "store"), "EMBEDDER_MODELS": "tiny"}
    refused = run_cli("serve", "--host", "0.0.0.0", "--no-preload", env=env, code=2)
    assert "set EMBEDDER_SERVE_API_KEY" in refused.stderr and "Traceback" not in refused.stderr
    spaces = run_cli("serve", "--host", "0.0.0.0", "--no-preload", env={**env, "EMBEDDER_SERVE_API_KEY": "   "}, code=2)
    assert "set EMBEDDER_SERVE_API_KEY" in spaces.stderr  # three spaces are no key
    short = run_cli(
        "serve", "--host", "0.0.0.0", "--no-preload", env={**env, "EMBEDDER_SERVE_API_KEY": "hunter2"}, code=2
    )
    assert "at least 16 characters" in short.stderr
    from embedder.settings import load_settings

    assert load_settings(serve_api_key=" " + "k" * 20 + "\n").serve_key == "k" * 20
    from embedder.service import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")


def test_thumbnails_are_made_at_ingest_served_and_removed_with_their_item(served):
    import io

    import numpy as np
    from PIL import Image

    from embedder.media.thumbnail import ThumbnailStore
    from embedder.trash import Trash

    client, library, folder, ids = served
    video = client.get(f"/items/{ids['h264.mp4']}/thumbnail")
    assert video.status_code == 200 and video.headers["content-type"] == "image/jpeg"
    picture = np.asarray(Image.open(io.BytesIO(video.content)))
    assert picture.shape == (212, 320, 3)  # 320 wide, the 96x64 source's aspect (an even height)
    assert picture.std() > 20  # a test pattern, not a blank frame
    audio = np.asarray(Image.open(io.BytesIO(client.get(f"/items/{ids['tone.mp3']}/thumbnail").content)))
    assert audio.shape == (96, 320, 3) and audio.std() > 20  # the waveform
    assert client.get("/items/00000000-0000-0000-0000-000000000000/thumbnail").status_code == 404

    thumbnails = ThumbnailStore(library.settings.thumbnails_dir)
    (folder / "tone.mp3").unlink()
    library.ingest([folder])  # the file is gone: its item goes to the trash, the thumbnail stays
    assert thumbnails.get(ids["tone.mp3"]) is not None
    with Trash(library.settings, library.media) as trash:
        assert trash.purge() == 1
    assert thumbnails.get(ids["tone.mp3"]) is None and thumbnails.get(ids["h264.mp4"]) is not None


def test_concurrent_text_queries_share_encoder_batches(served):
    import numpy as np

    client, library, _, _ = served
    texts = [f"query number {i}" for i in range(24)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda t: client.get("/search", params={"q": t, "limit": 3}).json(), texts))
    single = library.encoders.encode_query(texts[5])
    batched = library._queries.encode_query(texts[5])  # from the cache now
    for m in single:
        assert np.allclose(single[m], batched[m], atol=1e-5)
    assert [a["query"] for a in answers] == texts and all(len(a["hits"]) == 3 for a in answers)
    metrics = client.get("/metrics").text
    count = float(metrics.split("embedder_query_batch_size_count ")[1].split()[0])
    total = float(metrics.split("embedder_query_batch_size_sum ")[1].split()[0])
    assert total == 24 and count < 24  # every query encoded once, some of them together


def test_the_page_shows_results_with_thumbnails_in_a_real_browser(served, tmp_path):
    """Debian's chromium (headless shell) loads the page, runs its script against the API and
    renders the results; what a person would see is checked in the DOM and a screenshot."""
    import subprocess

    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if browser is None:
        pytest.skip("no chromium: scripts/setup.sh installs chromium-headless-shell")
    client, library, _, ids = served
    base = str(client.base_url)
    client.post("/events", json=[{"user": "carol", "item": ids["h264.mp4"], "weight": 3}])

    def render(query: str, shot: Path | None = None) -> str:
        args = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,800",
            "--virtual-time-budget=15000",
        ]
        args += [f"--screenshot={shot}"] if shot else ["--dump-dom"]
        done = subprocess.run([*args, f"{base}/?{query}"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    dom = render("q=a%20test%20pattern")
    assert dom.count('<article class="card"') == 3 and dom.count('data-loaded="1"') == 3  # every thumbnail drawn
    assert "3 results for “a test pattern”" in dom and 'class="fill visual' in dom
    recs = render("user=carol")
    assert "results for carol (content)" in recs and '<span class="branch" title="found by the content branch">' in recs
    assert f'data-id="{ids["h264.mp4"]}"' not in recs  # seen, so not recommended
    # Moments and the user's taste: each card says when its best moment is and why it is there.
    moments = render("q=a%20test%20pattern&moments=1&user=carol")
    assert "(moments), hybrid (rrf), for carol" in moments and 'class="why moment">▶ 0:00.0–0:03.0' in moments
    assert 'class="why personal">for you' in moments
    # Words only: the file whose name holds the word, with the word marked where it matched.
    words = render("q=tone&mode=lexical")
    assert "1 results for “tone”, lexical" in words and 'class="score">audio · words (BM25)' in words
    assert '<div class="why said" title="where the search words matched' in words and "<mark>tone</mark>" in words
    hybrid = render("q=tone")
    assert ", hybrid (rrf)" in hybrid and "= meaning " in hybrid
    shot = tmp_path / "page.png"
    render("q=a%20test%20pattern", shot)
    assert shot.stat().st_size > 10_000


def test_two_replicas_on_one_qdrant_server_store_serve_side_by_side(tmp_path, media, in_process_server):
    """Replicas hold no lock on a server store: an ingest job through one is searchable through the
    other, and an event posted to one counts in the other's recommendations (same machine, same log)."""
    from fastapi.testclient import TestClient

    from embedder import Library
    from embedder.service import create_app
    from embedder.settings import load_settings

    folder = tmp_path / "media"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(media[name], folder / name)
    settings = load_settings(store=in_process_server, models="tiny", device="cpu", workers=1, max_frames=2)
    first, second = Library(settings), Library(settings)  # two processes' worth: nothing shared but the store
    with TestClient(create_app(first, preload=False)) as a, TestClient(create_app(second, preload=False)) as b:
        job = a.post("/ingest", json={"paths": [str(folder)]}).json()
        deadline = time.monotonic() + 120
        while (state := a.get(f"/jobs/{job['id']}").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert state["state"] == "done" and state["summary"]["counts"]["new"] == 3
        found = b.get("/search", params={"q": "a test pattern"}).json()["hits"]
        assert len(found) == 3 and found == a.get("/search", params={"q": "a test pattern"}).json()["hits"]
        video = next(h["id"] for h in found if h["path"].endswith("h264.mp4"))
        assert a.post("/events", json={"user": "dora", "item": video}).json()["added"] == 1
        recs = b.get("/users/dora/recommendations", params={"strategy": "content"}).json()
        assert recs["used"] == ["content"] and video not in {r["id"] for r in recs["items"]}
    first.close()
    second.close()


def test_the_access_log_holds_no_raw_user_id_in_privacy_mode(tmp_path, media):
    """After 'forget', serve's own log must not still name the user: in the pseudonymous mode the
    access log writes the stored pseudonym; access_log_users=drop writes '-'."""
    import signal
    import subprocess
    import sys

    from embedder.service import AccessLogUsers
    from embedder.settings import load_settings

    secret = "k" * 32
    private = load_settings(pseudonymous_users=True, user_key=secret)
    redact = AccessLogUsers(private).redact
    assert (
        redact("/users/alice%40example.org/recommendations?limit=5")
        == f"/users/{private.stored_user('alice@example.org')}/recommendations?limit=5"
    )
    assert (
        redact("/search?q=jazz&user=alice&seen=exclude")
        == f"/search?q=jazz&user={private.stored_user('alice')}&seen=exclude"
    )
    assert AccessLogUsers(load_settings(access_log_users="drop")).redact("/users/bob/similar") == "/users/-/similar"
    assert AccessLogUsers(load_settings()).mode == "keep"

    env = {
        "EMBEDDER_STORE": str(tmp_path / "store"),
        "EMBEDDER_MODELS": "tiny",
        "EMBEDDER_WORKERS": "1",
        "EMBEDDER_PSEUDONYMOUS_USERS": "true",
        "EMBEDDER_USER_KEY": secret,
    }
    from tests.cli_runner import run_cli

    run_cli("ingest", media["tone.mp3"], "--quiet", env=env)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "embedder.cli", "serve", "--port", str(port), "--no-preload"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(port, server)
        assert httpx.get(f"http://127.0.0.1:{port}/users/alice-raw-id/recommendations", timeout=60).status_code == 200
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/search", params={"q": "a tone", "user": "alice-raw-id"}, timeout=60
            ).status_code
            == 200
        )
    finally:
        server.send_signal(signal.SIGINT)
        log = server.communicate(timeout=30)[0]
    assert f"/users/{private.stored_user('alice-raw-id')}/recommendations" in log
    assert "alice-raw-id" not in log


def wait_until_ready(port: int, server, timeout_s: float = 90) -> None:
    """Until an 'embedder serve' process on ``port`` answers /ready; fails if it exits first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and server.poll() is None, "embedder serve did not become ready"
        time.sleep(0.2)
