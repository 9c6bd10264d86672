"""What opening an embedded (Qdrant Edge) store costs at N items, and what it depends on.

A no-op ingest and `status` at a million items are dominated by opening the store (see
README.md). This measures that one step, in a fresh process per measurement, for stores filled
with the same synthetic items as run.py (tiny preset sizes, ingest's payloads):

- ``no_indexes``: no payload index at all;
- ``embedder``: the payload indexes embedder creates (keyword and numeric, 11 fields);
- ``embedder_optimized``: the same after ``EdgeShard.optimize()`` (indexed, immutable segments).

Each reports the seconds of ``EdgeShard.load`` and the peak RSS of the process after an exact
count, as the median of ``--runs`` fresh processes.

Usage: .venv/bin/python benchmarks/scale/edge_open.py [--items 100000] [--runs 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine, publish  # noqa: E402  (the scale benchmark's helpers, beside this file)

OPEN = (
    "import resource, sys, time\n"
    "from qdrant_edge import CountRequest, EdgeShard\n"
    "started = time.perf_counter(); shard = EdgeShard.load(sys.argv[1]); load = time.perf_counter() - started\n"
    "count = shard.count(CountRequest(exact=True)); shard.close()\n"
    "print(load, count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
)


def make_store(folder: Path, items: int, indexed: bool) -> Path:
    """A store holding ``items`` synthetic items (plus one seed); returns the shard's directory."""
    import numpy as np
    from run import fill

    import embedder.store.edge as edge
    from embedder.encoders.bundle import schema_for
    from embedder.settings import load_settings
    from embedder.store import PointRecord, open_store, point_id

    saved = edge.INDEXED_FIELDS, edge.NUMERIC_INDEXED_FIELDS
    if not indexed:
        edge.INDEXED_FIELDS, edge.NUMERIC_INDEXED_FIELDS = (), ()
    try:
        settings = load_settings(store=str(folder), models="tiny", device="cpu")
        with open_store(settings) as store:
            store.ensure_collection(schema_for(settings))
            dims = store.collection_dims()
            seed = {m: np.ones(d, np.float32) for m, d in dims.items() if m != "segments"}
            store.upsert(
                [PointRecord(point_id("seed"), seed, {"models": {m: "seed" for m in ("visual", "audio", "text")}})]
            )
        fill(folder, items)
    finally:
        edge.INDEXED_FIELDS, edge.NUMERIC_INDEXED_FIELDS = saved
    return next(folder.glob("*/edge_config.json")).parent


def open_cost(shard: Path, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", OPEN, str(shard)], capture_output=True, text=True, check=True)
        load, count, peak = out.stdout.split()
        samples.append((float(load), int(count), float(peak)))
    disk = sum(f.stat().st_size for f in shard.rglob("*") if f.is_file()) / 1e6
    return {
        "load_s": round(statistics.median(s[0] for s in samples), 3),
        "points": samples[0][1],
        "peak_rss_mb": round(max(s[2] for s in samples)),
        "disk_mb": round(disk),
    }


def optimize(shard: Path) -> float:
    """Optimize the shard (HNSW graphs, immutable segments); returns the seconds it took."""
    from qdrant_edge import EdgeShard

    started = time.perf_counter()
    edge_shard = EdgeShard.load(str(shard))
    edge_shard.optimize()
    edge_shard.close()
    return time.perf_counter() - started


def in_child(*job: str) -> str:
    """Run one of this script's jobs in a process of its own and return what it printed. Linux
    carries a process's peak RSS across fork and exec, so the process that starts the measured
    ones must never have held a loaded collection itself."""
    return subprocess.run([sys.executable, __file__, "--job", *job], check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--job", nargs="+", help=argparse.SUPPRESS)  # a child's part: make or optimize
    args = parser.parse_args()
    if args.job:
        if args.job[0] == "make":
            print(make_store(Path(args.job[1]), int(args.job[2]), args.job[3] == "indexed"))
        else:
            print(optimize(Path(args.job[1])))
        return
    rows = {}
    with tempfile.TemporaryDirectory(prefix="embedder-edge-open-") as tmp:
        for name, indexed in (("no_indexes", False), ("embedder", True)):
            made = in_child("make", str(Path(tmp) / name), str(args.items), "indexed" if indexed else "plain")
            shard = Path(made.split()[-1])
            rows[name] = open_cost(shard, args.runs)
            print(name, json.dumps(rows[name]), flush=True)
        optimize_s = float(in_child("optimize", str(shard)).split()[-1])
        rows["embedder_optimized"] = {**open_cost(shard, args.runs), "optimize_s": round(optimize_s, 1)}
        print("embedder_optimized", json.dumps(rows["embedder_optimized"]), flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    publish({"machine": machine(), "items": args.items, "runs_per_measurement": args.runs, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
