"""Generate a small sample library with ffmpeg, for the offline demo.

Each clip has a "topic" you can see and hear: a dominant colour and a tone pitch, plus a sidecar
with a title. ``python -m embedder.samples DIR`` writes them (skipping files already there).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLES = [
    # name, colour, tone Hz, title
    ("sunset_beach", "orange", 220, "Orange sunset over a calm beach with low waves"),
    ("forest_walk", "green", 330, "A walk through a green forest with birdsong"),
    ("ocean_dive", "blue", 440, "Diving in the deep blue ocean"),
    ("city_night", "purple", 550, "City lights at night, purple neon"),
    ("desert_wind", "yellow", 660, "Yellow sand dunes and desert wind"),
]


def make_samples(folder: str | Path, seconds: float = 4.0) -> list[Path]:
    """Write one short video per sample topic, an audio-only track and sidecars into ``folder``."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SystemExit("ffmpeg not found: run scripts/setup.sh (it installs FFmpeg with apt)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, colour, freq, title in SAMPLES:
        path = folder / f"{name}.mp4"
        if not path.exists():
            subprocess.run(
                [exe, "-nostdin", "-loglevel", "error", "-y",
                 "-f", "lavfi", "-i", f"color=c={colour}:size=160x120:rate=10:duration={seconds}",
                 "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}:sample_rate=48000",
                 "-vf", "noise=alls=20:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-shortest", str(path)],
                check=True,
            )
            (folder / f"{name}.json").write_text(json.dumps({"title": title, "tags": [colour]}))
        made.append(path)
    tone = folder / "low_hum.mp3"
    if not tone.exists():
        subprocess.run([exe, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "sine=frequency=110:duration=12", "-c:a", "libmp3lame", str(tone)], check=True)
    made.append(tone)
    return made


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "samples"
    for p in make_samples(target):
        print(p)
