"""How to store segments: one multivector per item (MaxSim) or one point per segment (grouped).

Both layouts hold the same synthetic segment vectors (N items x S segments, unit vectors around a
per-item centre) in an embedded Qdrant Edge store through embedder's own store layer, and answer
the same queries for the top 10 items:

* multivector: ``segments`` per item, one MaxSim query of ``limit`` items (what embedder does);
* segment points: a point per segment with its item id in the payload, one query of
  ``limit x depth`` segments, grouped by item client-side (Qdrant Edge has no grouped query);
  with too small a depth it returns fewer than ``limit`` distinct items.

Printed: write time, size on disk, median query time, and whether both return the same items.

Usage:
    .venv/bin/python benchmarks/moments/layout.py [--items 2000] [--segments 20] [--dim 512] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _size(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from embedder.store import Nearest, PointRecord, point_id
    from embedder.store.edge import EdgeStore

    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(args.items, args.dim)))
    segments = _unit(
        centres[:, None, :] + 0.8 * rng.normal(size=(args.items, args.segments, args.dim)) / np.sqrt(args.dim) * 8
    )
    ids = [point_id(f"item-{i}") for i in range(args.items)]
    picks = rng.integers(0, args.items, args.queries), rng.integers(0, args.segments, args.queries)
    queries = _unit(segments[picks] + 0.5 * rng.normal(size=(args.queries, args.dim)) / np.sqrt(args.dim) * 8)
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "items": args.items,
        "segments_per_item": args.segments,
        "dim": args.dim,
        "limit": args.limit,
    }

    with tempfile.TemporaryDirectory(prefix="embedder-layout-") as tmp:
        tmp = Path(tmp)
        multi = EdgeStore(tmp / "multi", "media")
        multi.ensure_collection({"segments": args.dim})
        started = time.perf_counter()
        for start in range(0, args.items, 200):
            multi.upsert(
                [
                    PointRecord(ids[i], {"segments": segments[i]}, {"item": ids[i]})
                    for i in range(start, min(start + 200, args.items))
                ]
            )
        multi_write = time.perf_counter() - started
        flat = EdgeStore(tmp / "flat", "media")
        flat.ensure_collection({"moment": args.dim})
        started = time.perf_counter()
        batch = []
        for i in range(args.items):
            for k in range(args.segments):
                batch.append(
                    PointRecord(point_id(f"item-{i}-{k}"), {"moment": segments[i, k]}, {"item": ids[i], "segment": k})
                )
            if len(batch) >= 4000:
                flat.upsert(batch)
                batch = []
        flat.upsert(batch)
        flat_write = time.perf_counter() - started

        def timed(fn):
            times, answers = [], []
            for q in queries:
                t = time.perf_counter()
                answers.append(fn(q))
                times.append((time.perf_counter() - t) * 1000)
            return statistics.median(times), answers

        multi_ms, multi_answers = timed(
            lambda q: [h.id for h in multi.search(Nearest(q, "segments"), limit=args.limit)]
        )
        result["multivector"] = {
            "write_s": round(multi_write, 2),
            "store_mb": round(_size(tmp / "multi") / 1e6, 1),
            "points": multi.count(),
            "query_ms_p50": round(multi_ms, 2),
        }
        result["segment_points"] = {
            "write_s": round(flat_write, 2),
            "store_mb": round(_size(tmp / "flat") / 1e6, 1),
            "points": flat.count(),
            "by_depth": {},
        }
        for depth in (1, 3, 10):

            def grouped(q, depth=depth):
                best: dict[str, float] = {}
                for h in flat.search(Nearest(q, "moment"), limit=args.limit * depth):
                    best.setdefault(h.payload["item"], h.score)  # hits come best first
                return list(best)[: args.limit]

            ms, answers = timed(grouped)
            same = sum(a == b for a, b in zip(answers, multi_answers)) / len(queries)
            full = sum(len(a) == args.limit for a in answers) / len(queries)
            result["segment_points"]["by_depth"][depth] = {
                "query_ms_p50": round(ms, 2),
                "same_items_as_multivector": same,
                "queries_with_full_page": full,
            }
        multi.close()
        flat.close()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
