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
                [
                    exe,
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    f"color=c={colour}:size=160x120:rate=10:duration={seconds}",
                    "-f",
                    "lavfi",
                    "-i",
                    f"sine=frequency={freq}:duration={seconds}:sample_rate=48000",
                    "-vf",
                    "noise=alls=20:allf=t",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-pix_fmt",
                    "yuv420p",
                    "-c:a",
                    "aac",
                    "-shortest",
                    str(path),
                ],
                check=True,
            )
            (folder / f"{name}.json").write_text(json.dumps({"title": title, "tags": [colour]}))
        made.append(path)
    tone = folder / "low_hum.mp3"
    if not tone.exists():
        subprocess.run(
            [
                exe,
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=110:duration=12",
                "-c:a",
                "libmp3lame",
                str(tone),
            ],
            check=True,
        )
    made.append(tone)
    return made


# -- a world for moment search: long videos made of known short clips ---------------------------

# Each clip's subtitle line uses its own words, so lines differ as much as sentences can.
_LINES = [
    "red fox crosses frozen river",
    "old sailor mends torn nets",
    "children chase paper kites",
    "grey heron waits motionless",
    "night train thunders past",
    "street band plays loud jazz",
    "chess player ponders quietly",
    "mountain goat climbs cliffs",
    "glass blower shapes vases",
    "lighthouse keeper lights lamps",
    "desert caravan crosses dunes",
    "snow leopard stalks prey",
    "city tram rattles downtown",
    "harbour crane lifts containers",
    "baker kneads warm dough",
    "violinist tunes strings",
]


def _hex_colour(index: int, count: int) -> str:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(index / count, 0.85, 0.9)
    return f"0x{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def make_moment_world(
    folder: str | Path, clips: int = 12, per_video: int = 4, clip_s: float = 8.0, size: str = "160x120"
) -> dict:
    """Write short clips and long videos made by concatenating them, with the truth.

    Clip ``i`` has its own colour (hues spread around the wheel), tone and subtitle line. Each long
    video is ``per_video`` clips in a row (hues far apart, so every join is a cut), with an ``.srt``
    sidecar showing each clip's line during it; each clip is in exactly one long video. The short
    clips carry a title sidecar instead of subtitles. Returns (and writes as ``world.json``)::

        {"clips": {name: {"path", "colour", "tone", "line", "video", "offset"}},
         "videos": {name: {"path", "clips": [...], "duration"}}, "clip_s": ...}
    """
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SystemExit("ffmpeg not found: run scripts/setup.sh (it installs FFmpeg with apt)")
    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    world: dict = {"clips": {}, "videos": {}, "clip_s": clip_s}
    specs = []
    for i in range(clips):
        spec = {
            "colour": _hex_colour(i, clips),
            "tone": 220 + 97 * i,
            "line": _LINES[i % len(_LINES)] + ("" if i < len(_LINES) else f" number {i}"),
        }
        specs.append(spec)

    def sources(spec) -> list[str]:
        return [
            "-f",
            "lavfi",
            "-i",
            f"color=c={spec['colour']}:size={size}:rate=10:duration={clip_s}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={spec['tone']}:duration={clip_s}:sample_rate=48000",
        ]

    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    for i, spec in enumerate(specs):
        name = f"clip{i:02d}"
        path = folder / "clips" / f"{name}.mp4"
        if not path.exists():
            subprocess.run(
                [
                    exe,
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-y",
                    *sources(spec),
                    "-vf",
                    "noise=alls=12:allf=t",
                    *encode,
                    "-shortest",
                    str(path),
                ],
                check=True,
            )
            (folder / "clips" / f"{name}.json").write_text(json.dumps({"title": f"clip number {i}"}))
        world["clips"][name] = {"path": str(path), **spec}
    # Interleave hues (0, n/2, 1, n/2+1, ...) so neighbours in a video differ strongly: each join is a cut.
    order = [j for pair in zip(range(clips // 2), range(clips // 2, clips)) for j in pair] + (
        [clips - 1] if clips % 2 else []
    )
    for v in range(0, clips, per_video):
        members = order[v : v + per_video]
        name = f"video{v // per_video:02d}"
        path = folder / "videos" / f"{name}.mp4"
        if not path.exists():
            inputs = [arg for j in members for arg in sources(specs[j])]
            joined = "".join(f"[{2 * k}:v]noise=alls=12:allf=t[v{k}];" for k in range(len(members)))
            joined += "".join(f"[v{k}][{2 * k + 1}:a]" for k in range(len(members)))
            joined += f"concat=n={len(members)}:v=1:a=1[v][a]"
            subprocess.run(
                [
                    exe,
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-y",
                    *inputs,
                    "-filter_complex",
                    joined,
                    "-map",
                    "[v]",
                    "-map",
                    "[a]",
                    *encode,
                    str(path),
                ],
                check=True,
            )
        cues = []
        for k, j in enumerate(members):
            clip = f"clip{j:02d}"
            world["clips"][clip].update(video=name, offset=k * clip_s)
            cues.append(
                f"{k + 1}\n{_srt_time(k * clip_s + 0.5)} --> {_srt_time((k + 1) * clip_s - 0.5)}\n{specs[j]['line']}\n"
            )
        (folder / "videos" / f"{name}.srt").write_text("\n".join(cues))
        world["videos"][name] = {
            "path": str(path),
            "clips": [f"clip{j:02d}" for j in members],
            "duration": len(members) * clip_s,
        }
    (folder / "world.json").write_text(json.dumps(world, indent=2))
    return world


def main(argv: list[str] | None = None) -> int:
    """``python -m embedder.samples [DIR]``: write the sample library and print its files."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m embedder.samples",
        description="Write a small sample library (short videos with a colour and a tone, an audio track, "
        "sidecar titles) for the offline demo; files already there are kept.",
    )
    parser.add_argument("folder", nargs="?", default="samples", help="where to write them (default: ./samples)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each clip (default: 4)")
    args = parser.parse_args(argv)
    try:
        made = make_samples(args.folder, seconds=args.seconds)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"error: cannot write the samples into {args.folder}: {exc}", file=sys.stderr)
        return 2
    for path in made:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
