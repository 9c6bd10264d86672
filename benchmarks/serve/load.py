"""Bounded load on 'embedder serve' over loopback, and the cold CLI for the same query, in one run.

1. Builds a store: the given media ingested with the chosen preset (real decoding and encoding),
   then synthetic items (random unit vectors in every content block) up to --items, synthetic
   users' events, and a trained collaborative model, so recommend runs every branch.
2. Times `embedder search TEXT --json` as a new process (--cli-runs times; the cold CLI).
3. Starts `embedder serve` as its own process, waits for /ready, and for each endpoint and each
   concurrency level runs --requests requests from that many client threads (bounded: each
   thread sends its next request when the previous one is answered):
   - search_text: GET /search with a distinct text per request (no cache hit; a repeated text
     is answered from the cache, which is not what this measures);
   - search_like: GET /items/{id}/like;
   - recommend: GET /users/{u}/recommendations (hybrid);
   - events: POST /events (one event; the ALS fold-in of that user runs in the request).

Usage:
    .venv/bin/python benchmarks/serve/load.py --models bench --items 10000 --out benchmarks/serve/load-bench.json
    .venv/bin/python benchmarks/serve/load.py --models tiny --items 10000 --out benchmarks/serve/load-tiny.json

Prints, and writes with --out, one JSON object: the machine, p50/p95/p99 ms and requests/s per
endpoint and concurrency, the CLI's seconds and the ratio cold CLI / served p50 (concurrency 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
QUERY = "a red circle on a blue background"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(1000 * ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 2)


def build_store(args, work: Path) -> tuple[dict, list[str], list[str]]:
    """Ingest the media, add synthetic items, users and a cf model; returns (env, item ids, users)."""
    from embedder import Library
    from embedder.fusion import FUSION_VERSION, item_weights
    from embedder.recommend.cf import CFParams, fit_cf, write_cf
    from embedder.recommend.interactions import Interaction
    from embedder.settings import load_settings
    from embedder.store import PointRecord, point_id

    env = {
        "EMBEDDER_STORE": str(work / "store"),
        "EMBEDDER_MODELS": args.models,
        "EMBEDDER_DEVICE": "cpu",
        "EMBEDDER_WORKERS": "2",
        "EMBEDDER_THUMBNAILS": "false",
        # The load test measures serving, not the write limits: a few users post every event.
        "EMBEDDER_USER_EVENTS_PER_MINUTE": "0",
        "EMBEDDER_ITEM_EVENTS_PER_MINUTE": "0",
    }
    settings = load_settings(
        store=env["EMBEDDER_STORE"], models=args.models, device="cpu", workers=2, thumbnails=False, cf_factors=32
    )
    library = Library.open(settings)
    folder = work / "media"
    shutil.copytree(args.media, folder, ignore=shutil.ignore_patterns("*.md"))
    summary = library.ingest([folder])
    dims = library.encoders.dims
    real = [r.id for r in library.media.scroll()]
    rng = np.random.default_rng(0)
    blocks = [m for m in ("visual", "audio", "text")]
    batch = []
    for i in range(args.items - len(real)):
        vectors = {}
        for m in blocks:
            v = rng.standard_normal(dims[m]).astype(np.float32)
            vectors[m] = v / np.linalg.norm(v)
        weights = item_weights(blocks, settings.fusion_weights)
        content = np.concatenate([vectors[m] * np.sqrt(weights[m]) for m in blocks])
        vectors["content"] = content / np.linalg.norm(content)
        pid = point_id(f"synthetic-{i}")
        batch.append(
            PointRecord(
                pid,
                vectors,
                {
                    "path": f"/synthetic/{i}.mp4",
                    "paths": [f"/synthetic/{i}.mp4"],
                    "kind": "video",
                    "modalities": blocks,
                    "sha256": f"synthetic-{i}",
                    "size": 1000 + i,
                    "duration": 10.0,
                    "models": library.encoders.model_ids,
                    "fusion": {"version": FUSION_VERSION, "weights": item_weights(blocks, settings.fusion_weights)},
                },
            )
        )
        if len(batch) == 1000:
            library.media.upsert(batch)
            batch = []
    if batch:
        library.media.upsert(batch)
    ids = real + [point_id(f"synthetic-{i}") for i in range(args.items - len(real))]
    users = [f"user{u}" for u in range(args.users)]
    events = [
        Interaction(u, ids[int(j)], 1.0, ts=float(k))
        for k, u in enumerate(users)
        for j in rng.choice(len(ids), size=20, replace=False)
    ]
    library.add_events([(e.user, e.item, e.weight) for e in events])
    with library._log_lock:
        everything = library.log.all()
    write_cf(fit_cf(everything, CFParams(factors=32)), library.media, library.users)
    points = library.media.count()
    library.close()
    return {**env, "points": points, "ingested": len(summary.new)}, ids, users


def run_level(base: str, make_request, requests: int, concurrency: int) -> dict:
    samples: list[float] = []
    errors = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker():
        with httpx.Client(base_url=base, timeout=120) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                response = make_request(client, i)
                elapsed = time.perf_counter() - started
                with lock:
                    samples.append(elapsed)
                    if response.status_code >= 400:
                        errors.append(response.text[:200])

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "requests": len(samples),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "p50_ms": pct(samples, 0.5),
        "p95_ms": pct(samples, 0.95),
        "p99_ms": pct(samples, 0.99),
        "requests_per_s": round(len(samples) / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="bench", help="bench (default sizes, random weights) or tiny")
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--requests", type=int, default=64, help="per endpoint and concurrency level")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--cli-runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="embedder-serve-load-"))
    server = None
    try:
        started = time.perf_counter()
        env, ids, users = build_store(args, work)
        build_s = time.perf_counter() - started
        cli_env = {k: v for k, v in os.environ.items() if k != "EMBEDDER_SERVER"}
        cli_env.update({k: str(v) for k, v in env.items() if k.startswith("EMBEDDER_")})
        embedder = str(ROOT / ".venv" / "bin" / "embedder")
        cli = []
        for _ in range(args.cli_runs):
            t = time.perf_counter()
            subprocess.run([embedder, "search", QUERY, "--json"], env=cli_env, check=True, capture_output=True)
            cli.append(time.perf_counter() - t)
        server, base = start_server(embedder, cli_env, "--fp32-queries")
        endpoints = {
            "search_text": lambda c, i: c.get("/search", params={"q": f"{QUERY} number {i}", "limit": 10}),
            "search_like": lambda c, i: c.get(f"/items/{ids[i % len(ids)]}/like", params={"limit": 10}),
            "recommend": lambda c, i: c.get(f"/users/{users[i % len(users)]}/recommendations", params={"limit": 10}),
            "events": lambda c, i: c.post(
                "/events", json={"user": users[i % len(users)], "item": ids[(7919 * i) % len(ids)], "weight": 1}
            ),
        }
        with httpx.Client(base_url=base, timeout=120) as warm:  # first calls pay one-time costs
            for make in endpoints.values():
                make(warm, 10_000_000).raise_for_status()
        results = {}
        for name, make in endpoints.items():
            results[name] = {}
            for level in levels:
                offset = 1000 * level  # distinct texts per level too
                results[name][str(level)] = run_level(
                    base, lambda c, i, m=make, o=offset: m(c, i + o), max(args.requests, 2 * level), level
                )
                print(name, level, results[name][str(level)], file=sys.stderr)
        metrics = httpx.get(f"{base}/metrics").text
        batch_sum = float(metrics.split("embedder_query_batch_size_sum ")[1].split()[0])
        batch_count = float(metrics.split("embedder_query_batch_size_count ")[1].split()[0])
        stop_server(server)
        # The same text searches through int8 copies of the text towers (serve --int8-queries).
        server, base = start_server(embedder, cli_env, "--int8-queries")
        with httpx.Client(base_url=base, timeout=120) as warm:
            endpoints["search_text"](warm, 10_000_000).raise_for_status()
        int8 = {}
        for level in levels:
            offset = 1000 * level
            int8[str(level)] = run_level(
                base, lambda c, i, o=offset: endpoints["search_text"](c, i + o), max(args.requests, 2 * level), level
            )
            print("search_text int8", level, int8[str(level)], file=sys.stderr)
        results["search_text_int8_queries"] = int8
        import torch

        cli_s = statistics.median(cli)
        report = {
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "gpu": None,
            },
            "preset": args.models,
            "points": env["points"],
            "users": len(users),
            "store_build_s": round(build_s, 1),
            "http": results,
            "mean_text_queries_per_encoder_batch": round(batch_sum / max(batch_count, 1), 2),
            "cli_search_s_median": round(cli_s, 3),
            "cli_runs": cli,
            "cli_over_served_search_p50_at_1": round(cli_s / (results["search_text"]["1"]["p50_ms"] / 1000), 1),
            "cli_over_served_int8_search_p50_at_1": round(cli_s / (int8["1"]["p50_ms"] / 1000), 1),
            "int8_over_fp32_search_p50_at_1": round(int8["1"]["p50_ms"] / results["search_text"]["1"]["p50_ms"], 3),
        }
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


def start_server(embedder: str, env: dict, *flags: str) -> tuple[subprocess.Popen, str]:
    """`embedder serve` on a free loopback port, once /ready answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [embedder, "serve", "--port", str(port), *flags],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"serve did not start: {server.stderr.read()[-2000:]}")
        time.sleep(0.2)


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        server.wait(30)


if __name__ == "__main__":
    main()
