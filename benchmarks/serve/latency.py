"""Latency of a query through 'embedder serve' against the same query as a new CLI process.

Ingests the given media (tiny preset: its encoders cost almost nothing, so this measures the
service's overhead and what a new process pays to start, not model compute), starts the service
on a free port, and times, in one run:
- N sequential HTTP requests for each of: text search, search by item, recommendations;
- 3 runs of the same text search as `embedder search ... --json` (a new process each).

Usage: .venv/bin/python benchmarks/serve/latency.py [MEDIA_DIR] [N]     (defaults: ../shared/media, 50)
Prints one JSON object: the machine, p50/p95 per endpoint in ms, CLI seconds, and the ratio.
"""

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from embedder import Library
from embedder.service import create_app
from embedder.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2)}


def main() -> None:
    media = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "media")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    work = Path(tempfile.mkdtemp(prefix="embedder-serve-bench-"))
    try:
        folder = work / "media"
        shutil.copytree(media, folder, ignore=shutil.ignore_patterns("*.md"))
        settings = load_settings(store=str(work / "store"), models="tiny", device="cpu")
        library = Library.open(settings)
        library.ingest([folder])
        item = next(iter(library.media.scroll())).id
        library.add_events([("u1", item, 1.0)])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(library), host="127.0.0.1", port=port, log_level="error"))
        threading.Thread(target=server.run, daemon=True).start()
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        while True:
            try:
                if client.get("/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        results = {}
        for name, url in {"search_text": "/search?q=a+rocket+launch", "search_item": f"/items/{item}/like",
                          "recommend": "/users/u1/recommendations"}.items():
            client.get(url).raise_for_status()  # warm
            samples = []
            for _ in range(n):
                started = time.perf_counter()
                client.get(url).raise_for_status()
                samples.append(time.perf_counter() - started)
            results[name] = percentiles(samples)
        server.should_exit = True
        library.close()
        time.sleep(1)
        cli = []
        env = {**os.environ, "EMBEDDER_STORE": str(work / "store"), "EMBEDDER_MODELS": "tiny", "EMBEDDER_DEVICE": "cpu"}
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([str(ROOT / ".venv" / "bin" / "embedder"), "search", "a rocket launch", "--json"], env=env,
                           check=True, capture_output=True)
            cli.append(time.perf_counter() - started)
        cli_s = statistics.median(cli)
        print(json.dumps({
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "preset": "tiny", "requests_per_endpoint": n, "http": results,
            "cli_search_s_median_of_3": round(cli_s, 3),
            "cli_over_http_search_p50": round(cli_s / (results["search_text"]["p50_ms"] / 1000), 1),
        }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
