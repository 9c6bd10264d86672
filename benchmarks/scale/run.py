"""Does a no-op ingest or `status` cost grow with the collection? The scaling curve, in one run.

For each size N (default 0, 10k, 100k, 1M): a fresh embedded store gets a small real folder
ingested (2 files, tiny preset), then N synthetic items (random unit vectors at the tiny
preset's sizes, payloads like ingest writes: paths under /synthetic, dirs, mtimes, sha256,
models). Then, each as a new process: `embedder ingest SMALL_FOLDER --json` once right after the
fill (the first run after a write opens the engine), then 3 more times (nothing changed, so
nothing is decoded), `embedder status --json` 3 times, and `status` once more after removing the
collection's kept answers, as any other write does. It reports the median wall time and the
largest peak RSS of each, and the ratio to the N=0 store.

Usage: .venv/bin/python benchmarks/scale/run.py [--sizes 0,10000,100000,1000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from embedder.store.reads import READS_FILE

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("h265_video.mp4", "nasa_13013.mp4.audio.mp3")


def fill(store_dir: Path, n: int) -> float:
    """Add ``n`` synthetic items; returns the seconds it took."""
    from embedder.fusion import FUSION_VERSION, item_weights
    from embedder.payload import location_fields
    from embedder.settings import load_settings
    from embedder.store import PointRecord, open_store, point_id

    settings = load_settings(store=str(store_dir), models="tiny", device="cpu")
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    blocks = ("visual", "audio", "text")
    weights = item_weights(blocks, settings.fusion_weights)
    with open_store(settings) as store:
        models = {m: model for r in store.scroll() for m, model in r.payload["models"].items()}
        dims = store.collection_dims()
        for start in range(0, n, 5000):
            count = min(5000, n - start)
            vectors = {m: rng.standard_normal((count, dims[m])).astype(np.float32) for m in blocks}
            for m in blocks:
                vectors[m] /= np.linalg.norm(vectors[m], axis=1, keepdims=True)
            content = np.concatenate([vectors[m] * np.sqrt(weights[m]) for m in blocks], axis=1)
            content /= np.linalg.norm(content, axis=1, keepdims=True)
            points = []
            for j in range(count):
                i = start + j
                path = f"/synthetic/d{i // 1000}/f{i}.mp4"
                payload = {
                    **location_fields([path], {path: 1_700_000_000_000_000_000 + i}),
                    "sha256": f"{i:064x}",
                    "size": 1000 + i,
                    "duration": 10.0,
                    "kind": "video",
                    "modalities": list(blocks),
                    "models": {m: models[m] for m in blocks},
                    "fusion": {"version": FUSION_VERSION, "weights": weights},
                }
                named = {m: vectors[m][j] for m in blocks} | {"content": content[j]}
                points.append(PointRecord(point_id(f"synthetic-{i}"), named, payload))
            store.upsert(points)
    return time.perf_counter() - started


def fill_in_child(store_dir: Path, n: int) -> float:
    """:func:`fill` in a process of its own. Linux carries a process's peak RSS across exec, and a
    child starts as a copy of its parent, so a parent holding a loaded collection would show its
    own memory in every command it starts; the benchmark's process stays small instead."""
    out = subprocess.run(
        [sys.executable, __file__, "--fill", str(store_dir), str(n)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.split()[-1])


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one command, as its own process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.read().decode()[-2000:]}")
    json.loads(out)  # a complete answer
    return wall, usage.ru_maxrss / 1024


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def publish(report: dict, out: Path | None) -> None:
    """Print the report as JSON, and write it to ``out`` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0,10000,100000,1000000")
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--fill", nargs=2, metavar=("STORE", "N"), help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.fill:
        print(fill(Path(args.fill[0]), int(args.fill[1])))
        return
    embedder = str(ROOT / ".venv" / "bin" / "embedder")
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        work = Path(tempfile.mkdtemp(prefix="embedder-scale-"))
        try:
            small = work / "small"
            small.mkdir()
            for name in SMALL:
                shutil.copy(args.media / name, small / name)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("EMBEDDER_")},
                "EMBEDDER_STORE": str(work / "store"),
                "EMBEDDER_MODELS": "tiny",
                "EMBEDDER_DEVICE": "cpu",
            }
            subprocess.run([embedder, "ingest", str(small), "--quiet"], env=env, check=True, capture_output=True)
            fill_s = fill_in_child(work / "store", n)
            # The fill wrote, so the first run opens the engine; it leaves its answers kept.
            first_wall, first_rss = timed([embedder, "ingest", str(small), "--json"], env)
            ingest = [timed([embedder, "ingest", str(small), "--json"], env) for _ in range(args.runs)]
            status = [timed([embedder, "status", "--json"], env) for _ in range(args.runs)]
            # What `status` costs after a write by something other than ingest (an event, a
            # removal): the kept answers are gone, as a write leaves them.
            kept = list((work / "store").glob(f"*/{READS_FILE}"))
            assert kept, "the runs above kept no answers"
            for file in kept:
                file.unlink()
            cold_wall, cold_rss = timed([embedder, "status", "--json"], env)
            size_mb = sum(f.stat().st_size for f in (work / "store").rglob("*") if f.is_file()) / 1e6
            row = {
                "items": n + len(SMALL),
                "fill_s": round(fill_s, 1),
                "store_mb": round(size_mb),
                "noop_ingest_s": round(statistics.median(w for w, _ in ingest), 3),
                "noop_ingest_peak_rss_mb": round(max(m for _, m in ingest)),
                "status_s": round(statistics.median(w for w, _ in status), 3),
                "status_peak_rss_mb": round(max(m for _, m in status)),
                "first_ingest_after_a_write_s": round(first_wall, 3),
                "first_ingest_after_a_write_peak_rss_mb": round(first_rss),
                "status_after_another_write_s": round(cold_wall, 3),
                "status_after_another_write_peak_rss_mb": round(cold_rss),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    base = rows[0]
    for row in rows:
        row["noop_ingest_vs_smallest"] = round(row["noop_ingest_s"] / base["noop_ingest_s"], 2)
        row["status_vs_smallest"] = round(row["status_s"] / base["status_s"], 2)
    publish({"machine": machine(), "runs_per_measurement": args.runs, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
