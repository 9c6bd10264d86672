"""Decode alone, encode alone and the full ingest, on the same media in one run, with the ratios.

Generates N clips (default 12 x 20 s, 640x360, 30 fps H.264 + AAC, distinct pictures and tones),
then measures, in this order:

1. raw libraries, one process: decord at 1 frame/s resized at decode to the encoder's input, and
   torchaudio load + resample to 48 kHz mono (what any pipeline must at least do);
2. embedder's decode stage alone (probe, frames, audio windows, text, thumbnail) through the
   isolated worker processes, with 1 worker, with 1 worker and thumbnails off, and with the
   configured workers;
3. the encoders alone on the decoded items (frames/s, audio windows/s) at the configured batch;
4. the full `ingest` into a fresh store.

Ratios printed: decode stage (1 worker) vs raw libraries; on a CPU, ingest vs the serial bound
(decode alone with the configured workers + encoders alone: they share the cores); on a GPU,
ingest vs min(decode bound, encode bound), and the GPU's mean utilization during the ingest
(``nvidia-smi``, every 200 ms). The machine (CPUs, GPU, torch, CUDA) is printed too.

Usage:
    .venv/bin/python benchmarks/throughput/run.py [--models bench] [--device auto] [--clips 12]
        [--seconds 20] [--workers N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path


def make_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    files = []
    for i in range(count):
        target = folder / f"clip_{i:02d}.mp4"
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
                f"testsrc2=size=640x360:rate=30:duration={seconds}",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency={200 + 37 * i}:duration={seconds}:sample_rate=44100",
                "-vf",
                f"hue=h={i * 29}",
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
                str(target),
            ],
            check=True,
        )
        files.append(target)
    return files


def raw_libraries(files: list[Path], image_size: int, fps: float) -> dict:
    """decord frames at ``fps`` resized at decode, torchaudio load + resample: the floor."""
    import decord
    import torchaudio
    import torchaudio.functional as AF

    from embedder.media.video import target_size

    started = time.perf_counter()
    frames = windows = 0
    for path in files:
        probe = decord.VideoReader(str(path))
        width, height = probe[0].shape[1], probe[0].shape[0]
        rate, total = probe.get_avg_fps(), len(probe)
        del probe
        h, w = target_size(width, height, image_size)
        reader = decord.VideoReader(str(path), width=w, height=h)
        step = max(1, int(round(rate / fps)))
        picked = reader.get_batch(list(range(step // 2, total, step))).asnumpy()
        frames += len(picked)
        wave, sr = torchaudio.load(str(path))
        mono = AF.resample(wave.mean(dim=0), sr, 48_000)
        windows += max(1, int(len(mono) // (48_000 * 10)))
    wall = time.perf_counter() - started
    return {
        "wall_s": round(wall, 3),
        "frames": frames,
        "frames_per_s": round(frames / wall, 2),
        "audio_windows": windows,
    }


def decode_stage(files: list[Path], settings, image_size: int, workers: int) -> tuple[dict, list]:
    """embedder's decode (decode_item) through the isolated workers; returns (numbers, items)."""
    from embedder.media.decode import DecodeOptions, decode_item
    from embedder.media.isolation import map_isolated

    options = DecodeOptions.from_settings(settings, image_size)
    started = time.perf_counter()
    items = []
    for result in map_isolated(
        decode_item, [(str(f), (str(f), options)) for f in files], workers=workers, timeout_s=settings.decode_timeout_s
    ):
        if result.error is not None:
            raise SystemExit(f"decode failed: {result.error}")
        items.append(result.value)
    wall = time.perf_counter() - started
    frames = sum(0 if i.frames is None else len(i.frames.timestamps) for i in items)
    windows = sum(0 if i.audio is None else len(i.audio.windows) for i in items)
    return (
        {
            "workers": workers,
            "thumbnails": options.thumbnail,
            "wall_s": round(wall, 3),
            "frames": frames,
            "audio_windows": windows,
            "frames_per_s": round(frames / wall, 2),
            "audio_windows_per_s": round(windows / wall, 2),
        },
        items,
    )


def encode_alone(items: list, encoders, settings) -> dict:
    from embedder.embedding import embed_items

    embed_items(items[:1], encoders, settings.fusion_weights, settings.batch_size)  # warm-up (kernels, caches)
    started = time.perf_counter()
    embed_items(items, encoders, settings.fusion_weights, settings.batch_size)
    wall = time.perf_counter() - started
    frames = sum(0 if i.frames is None else len(i.frames.timestamps) for i in items)
    windows = sum(0 if i.audio is None else len(i.audio.windows) for i in items)
    from embedder.encoders.runtime import batch_size_for

    batch = batch_size_for(settings.batch_size, encoders.device)
    if encoders["visual"].model.batches.cap is not None:  # the GPU ran out of memory at the asked size
        batch = encoders["visual"].model.batches.cap
    return {
        "wall_s": round(wall, 3),
        "batch_size": batch,
        "frames_per_s": round(frames / wall, 2),
        "audio_windows_per_s": round(windows / wall, 2),
    }


class GpuBusy:
    """The GPU's mean utilization while a step runs (the share of time a kernel was running),
    sampled every 200 ms by ``nvidia-smi``; ``share`` stays ``None`` without CUDA or the tool."""

    def __init__(self, device: str):
        self.device = device
        self.share: float | None = None
        self._proc = None

    def __enter__(self) -> GpuBusy:
        import shutil

        if self.device.startswith("cuda") and shutil.which("nvidia-smi"):
            index = self.device.split(":")[1] if ":" in self.device else "0"
            self._proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    "-i",
                    index,
                    "-lms",
                    "200",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        samples = [int(line) for line in out.split() if line.strip().isdigit()]
        if samples:
            self.share = round(sum(samples) / len(samples) / 100, 3)


def machine(device: str) -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if gpu else None,
        "gpu": gpu,
        "device": device,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="bench")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=None, help="decoder processes (default: the setting's)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from embedder.encoders.bundle import load_encoders
    from embedder.encoders.runtime import resolve_device
    from embedder.engine.ingest import run_ingest
    from embedder.media.isolation import run_isolated
    from embedder.settings import load_settings

    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="embedder-throughput-") as tmp:
        folder = Path(tmp) / "media"
        folder.mkdir()
        files = make_clips(folder, args.clips, args.seconds)
        overrides = {"models": args.models, "device": device, "store": str(Path(tmp) / "store")}
        if args.workers:
            overrides["workers"] = args.workers
        settings = load_settings(**overrides)
        encoders = load_encoders(settings)
        run_isolated(str, ("warm-up",), path="warm-up", stage="decode", timeout_s=120)  # start the forkserver
        raw = raw_libraries(files, encoders.image_size, settings.video_fps)
        single = settings.model_copy(update={"workers": 1})  # one process: its decoder may use every core
        one, _ = decode_stage(files, single, encoders.image_size, 1)
        bare, _ = decode_stage(files, single.model_copy(update={"thumbnails": False}), encoders.image_size, 1)
        many, items = decode_stage(files, settings, encoders.image_size, settings.workers)
        encode = encode_alone(items, encoders, settings)
        started = time.perf_counter()
        with GpuBusy(device) as busy:
            summary = run_ingest([folder], settings, encoders=encoders).to_dict()
        ingest_s = time.perf_counter() - started
        assert summary["counts"]["new"] == len(files), summary["counts"]
        frames = many["frames"]
        ingest = {
            "wall_s": round(ingest_s, 3),
            "frames_per_s": round(frames / ingest_s, 2),
            "gpu_busy_share": busy.share,
            "timings": summary["timings"],
        }
        serial_s = many["wall_s"] + encode["wall_s"]
        decode_bound = many["frames_per_s"]
        encode_bound = encode["frames_per_s"]
        report = {
            "machine": machine(device),
            "media": f"{len(files)} clips x {args.seconds:g} s, 640x360, 30 fps H.264 + AAC",
            "preset": args.models,
            "raw_libraries_1_process": raw,
            "decode_stage": {"1_worker": one, "1_worker_no_thumbnails": bare, f"{settings.workers}_workers": many},
            "encoders_alone": encode,
            "ingest": ingest,
            "ratios": {
                "decode_stage_vs_raw_1_process": round(raw["wall_s"] / one["wall_s"], 3),
                "decode_stage_no_thumbnails_vs_raw": round(raw["wall_s"] / bare["wall_s"], 3),
                "cpu_ingest_vs_serial_bound": round(serial_s / ingest_s, 3),
                "gpu_ingest_vs_min_bound": round(ingest["frames_per_s"] / min(decode_bound, encode_bound), 3),
                # The second GPU target: busy >= 0.7 of the ingest when decoding is not the bound.
                "gpu_busy_share_of_ingest": busy.share,
                "decoding_is_the_bound": decode_bound < encode_bound,
            },
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
