"""Near-duplicate detection (`embedder duplicates`): precision and recall on a generated set.

Six distinct 8 s clips (FFmpeg's test sources: testsrc2, mandelbrot, life, smptebars, cellauto,
rgbtestsrc, each with its own tone) and, of each, four copies: re-encoded at CRF 38, scaled to
half size, trimmed (the middle 5 s) and watermarked (a white box). 30 files, 60 true duplicate
pairs among 435. They are ingested with a preset, `embedder duplicates --threshold T --json`
runs for each threshold, and the pairs inside its clusters are scored against the truth.

With random weights (no pretrained CLIP/CLAP can be downloaded here) every similarity sits close
to 1, so the useful thresholds are higher than with real weights; the table says where the
classes separate on this set, not what the default should be for trained models.

Usage: .venv/bin/python benchmarks/search/duplicates.py [--models tiny] [--out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMBEDDER = str(ROOT / ".venv" / "bin" / "embedder")
SOURCES = ("testsrc2", "mandelbrot", "life", "smptebars", "cellauto", "rgbtestsrc")
COPIES = {
    "reenc": ["-c:v", "libx264", "-crf", "38", "-c:a", "aac", "-b:a", "48k"],
    "scaled": ["-vf", "scale=160:120", "-c:a", "copy"],
    "trim": ["-ss", "2", "-t", "5", "-c:v", "libx264", "-c:a", "aac"],
    "mark": ["-vf", "drawbox=x=10:y=10:w=80:h=30:color=white@0.8:t=fill", "-c:a", "copy"],
}
THRESHOLDS = (0.9, 0.95, 0.98, 0.99, 0.993, 0.995, 0.997)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def generate(folder: Path) -> None:
    for i, source in enumerate(SOURCES, 1):
        original = folder / f"clip{i}.mp4"
        extra = ":mold=10" if source == "life" else ""
        ffmpeg(
            "-f", "lavfi", "-i", f"{source}=size=320x240:rate=10{extra}",
            "-f", "lavfi", "-i", f"sine=frequency={200 * i}:sample_rate=44100",
            "-t", "8", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(original),
        )  # fmt: skip
        for name, args in COPIES.items():
            before = args[:4] if name == "trim" else []
            after = args[4:] if name == "trim" else args
            ffmpeg(*before, "-i", str(original), *after, str(folder / f"clip{i}_{name}.mp4"))


def group(path: str) -> str:
    return re.search(r"clip(\d+)", path).group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="duplicates-"))
    media = work / "media"
    media.mkdir()
    generate(media)
    env = {**os.environ, "EMBEDDER_STORE": str(work / "store"), "EMBEDDER_MODELS": args.models}
    env["EMBEDDER_SPEECH_MODEL"] = "none"
    subprocess.run([EMBEDDER, "ingest", str(media), "--quiet"], env=env, check=True, capture_output=True)
    files = sorted(str(p) for p in media.iterdir())
    truth = {(a, b) for a, b in itertools.combinations(files, 2) if group(a) == group(b)}
    rows = []
    for threshold in THRESHOLDS:
        done = subprocess.run(
            [EMBEDDER, "duplicates", "--threshold", str(threshold), "--json", "--quiet"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        clusters = json.loads(done.stdout)["clusters"]
        found = {
            tuple(sorted((a["path"], b["path"]))) for c in clusters for a, b in itertools.combinations(c["members"], 2)
        }
        hits = len(found & truth)
        rows.append(
            {
                "threshold": threshold,
                "clusters": len(clusters),
                "pairs_found": len(found),
                "precision": round(hits / len(found), 3) if found else None,
                "recall": round(hits / len(truth), 3),
            }
        )
    results = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "models": args.models,
        "files": len(files),
        "true_pairs": len(truth),
        "thresholds": rows,
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
