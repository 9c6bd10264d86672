"""Ingest throughput on this machine: one decoder process against two, in one run.

Generates 24 clips (6 s, 640x360, 30 fps H.264 with AAC stereo), then ingests them twice with the
tiny preset (so encoding is cheap and decoding dominates) into fresh stores, with ``workers=1``
and ``workers=2``. Reports files/s, the time split, and the ratio.

Usage: python benchmarks/ingest/run.py [OUT.json]
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLIPS = 24


def make_clips(folder: Path) -> None:
    for i in range(CLIPS):
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30:duration=6",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency={200 + 20 * i}:duration=6:sample_rate=44100",
                "-vf",
                f"hue=h={i * 15}",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-ac",
                "2",
                "-shortest",
                str(folder / f"clip_{i:02d}.mp4"),
            ],
            check=True,
        )


def main(out: Path) -> dict:
    from embedder.encoders.bundle import load_encoders
    from embedder.engine.ingest import run_ingest
    from embedder.settings import load_settings

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        make_clips(media)
        encoders = load_encoders(load_settings(models="tiny", device="cpu"))
        # Start the decoder forkserver (it imports torch and the decoders once) before timing,
        # so that neither run pays for it.
        from embedder.media.isolation import run_isolated

        run_isolated(str, ("warm-up",), path="warm-up", stage="decode", timeout_s=120)
        for workers in (1, 2):
            settings = load_settings(
                models="tiny", device="cpu", store=str(Path(tmp) / f"store{workers}"), workers=workers, max_frames=8
            )
            started = time.perf_counter()
            summary = run_ingest([media], settings, encoders=encoders).to_dict()
            wall = time.perf_counter() - started
            assert summary["counts"]["new"] == CLIPS, summary["counts"]
            results[f"workers={workers}"] = {
                "wall_s": round(wall, 2),
                "files_per_s": round(CLIPS / wall, 3),
                "timings": summary["timings"],
            }
    report = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, no GPU, {platform.python_version()}",
        "clips": f"{CLIPS} x 6 s 640x360 30 fps H.264 + AAC, tiny preset, max_frames 8, 1 fps sampling",
        "results": results,
        "speedup_2_vs_1_workers": round(results["workers=1"]["wall_s"] / results["workers=2"]["wall_s"], 2),
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/ingest/results.json")), indent=2))
