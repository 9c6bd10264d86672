"""Moment search on a world of long videos made of known short clips: localisation, subtitle
moments, and what segments cost.

The world (``embedder.samples.make_moment_world``): N short clips, each with its own colour, tone
and subtitle line, and long videos that concatenate them at known offsets (each clip in exactly
one long video, with an ``.srt`` showing its line during it). All of it is ingested.

Measured, for each segmenting mode (shots, windows) in one run:

* **localisation**: for each clip, ``search --like CLIP --moments``; a hit when the first long
  video among the hits is the one containing the clip and its best moment starts within
  ``segment_s / 2`` of the true offset. Also: the rank of that video among all hits (the other
  short clips compete with it).
* **subtitle moments**: for each clip's line, ``search LINE --moments``; a hit when the top hit
  is the video that shows the line and its best moment overlaps the time the line is shown.
* **cost**: ingest time and store size with segments and without, on the same media, as ratios;
  and the same for one long video (``--long-s``, default 320 s: a world video looped), whose
  1-frame-per-second samples are capped at ``max_frames``, so cutting it needs a pass over the
  video at 1 frame per second and a frame for each segment the samples miss.

Usage:
    .venv/bin/python benchmarks/moments/run.py [--models tiny] [--clips 12] [--per-video 4]
        [--clip-s 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def _ingest(world_dir: Path, store: Path, models: str, **overrides):
    from embedder import Library
    from embedder.settings import Settings

    settings = Settings(store=str(store), models=models, **overrides)
    library = Library(settings)
    started = time.perf_counter()
    summary = library.ingest([world_dir])
    elapsed = time.perf_counter() - started
    if summary.failed:
        raise SystemExit(f"ingest failed: {summary.failed}")
    size = library.status()["size_bytes"]
    thumbs = (
        sum(f.stat().st_size for f in Path(settings.thumbnails_dir).rglob("*.jpg"))
        if Path(settings.thumbnails_dir).is_dir()
        else 0
    )
    return library, elapsed, size, thumbs


def _localise(library, world: dict, tolerance: float) -> dict:
    videos = {v["path"]: name for name, v in world["videos"].items()}
    hits, ranks, errors = 0, [], []
    for clip in world["clips"].values():
        found = library.search(like=clip["path"], moments=True, limit=len(world["clips"]) + len(videos))
        rank = next((r for r, h in enumerate(found, 1) if h.path == world["videos"][clip["video"]]["path"]), None)
        first_video = next((h for h in found if h.path in videos), None)
        ok = (
            first_video is not None
            and videos[first_video.path] == clip["video"]
            and abs(first_video.moment.start - clip["offset"]) <= tolerance
        )
        hits += ok
        ranks.append(rank)
        if first_video is not None and videos[first_video.path] == clip["video"]:
            errors.append(abs(first_video.moment.start - clip["offset"]))
    return {
        "clips": len(world["clips"]),
        "hit_rate": round(hits / len(world["clips"]), 3),
        "tolerance_s": tolerance,
        "median_start_error_s": round(statistics.median(errors), 3) if errors else None,
        "rank_of_video_among_all_hits": ranks,
    }


def _subtitles(library, world: dict, clip_s: float) -> dict:
    hits = 0
    for clip in world["clips"].values():
        found = library.search(clip["line"], moments=True, limit=5)
        top = found[0] if found else None
        shown = (clip["offset"] + 0.5, clip["offset"] + clip_s - 0.5)
        ok = (
            top is not None
            and top.path == world["videos"][clip["video"]]["path"]
            and top.moment.start < shown[1]
            and top.moment.end > shown[0]
        )
        hits += ok
    return {"lines": len(world["clips"]), "hit_rate": round(hits / len(world["clips"]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny")
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--per-video", type=int, default=4)
    parser.add_argument("--clip-s", type=float, default=8.0)
    parser.add_argument("--segment-s", type=float, default=10.0)
    parser.add_argument("--long-s", type=float, default=320.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("EMBEDDER_WEIGHTS_DIR", str(Path(tempfile.gettempdir()) / "embedder-bench-weights"))

    from embedder.samples import make_moment_world

    with tempfile.TemporaryDirectory(prefix="embedder-moments-") as tmp:
        tmp = Path(tmp)
        world = make_moment_world(tmp / "world", clips=args.clips, per_video=args.per_video, clip_s=args.clip_s)
        result = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "world": {
                "clips": args.clips,
                "long_videos": len(world["videos"]),
                "clip_s": args.clip_s,
                "long_video_s": args.per_video * args.clip_s,
            },
            "models": args.models,
            "segment_s": args.segment_s,
            "modes": {},
        }
        # A first ingest warms the caches (model files, decoder libraries) so that the timed runs compare.
        _ingest(tmp / "world", tmp / "warm-up", args.models, segments=True)[0].close()
        library, plain_s, plain_size, plain_thumbs = _ingest(tmp / "world", tmp / "plain", args.models, segments=False)
        library.close()
        for mode in ("shots", "windows"):
            library, seg_s, seg_size, seg_thumbs = _ingest(
                tmp / "world", tmp / mode, args.models, segments=True, segment_mode=mode, segment_s=args.segment_s
            )
            with library:
                result["modes"][mode] = {
                    "localisation": _localise(library, world, args.segment_s / 2),
                    "subtitle_moments": _subtitles(library, world, args.clip_s),
                    "cost": {
                        "ingest_s": round(seg_s, 2),
                        "ingest_s_without": round(plain_s, 2),
                        "ingest_ratio": round(seg_s / plain_s, 2),
                        "store_mb": round(seg_size / 1e6, 2),
                        "store_mb_without": round(plain_size / 1e6, 2),
                        "store_ratio": round(seg_size / plain_size, 2),
                        "thumbnails_kb": round(seg_thumbs / 1e3, 1),
                        "thumbnails_kb_without": round(plain_thumbs / 1e3, 1),
                    },
                }
            print(mode, json.dumps(result["modes"][mode]), flush=True)
        long_dir = tmp / "long"
        long_dir.mkdir()
        loops = max(0, int(args.long_s // (args.per_video * args.clip_s)) - 1)
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-stream_loop",
                str(loops),
                "-i",
                world["videos"]["video00"]["path"],
                "-c",
                "copy",
                str(long_dir / "long.mp4"),
            ],
            check=True,
        )
        costs = {}
        for label, overrides in (("without", {"segments": False}), ("shots", {"segments": True})):
            library, seconds, size, _ = _ingest(long_dir, tmp / f"long-{label}", args.models, **overrides)
            with library:
                record = next(iter(library.media.scroll()))
                costs[label] = {
                    "ingest_s": round(seconds, 2),
                    "store_mb": round(size / 1e6, 2),
                    "frames": len(record.payload["frames"]),
                    "segments": len(record.payload.get("segments") or []),
                }
        result["long_video"] = {
            "seconds": (loops + 1) * args.per_video * args.clip_s,
            **costs,
            "ingest_ratio": round(costs["shots"]["ingest_s"] / costs["without"]["ingest_s"], 2),
            "store_ratio": round(costs["shots"]["store_mb"] / costs["without"]["store_mb"], 2),
        }
        print("long", json.dumps(result["long_video"]), flush=True)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
