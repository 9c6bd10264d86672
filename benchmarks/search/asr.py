"""Speech recognition speed on this machine: real-time factor per recogniser, one run.

Two minutes of real speech (the NASA narration in ``tests/data``, looped) and two minutes of a
tone (what the voice detector costs where nobody speaks), through
:func:`embedder.media.speech.transcribe`, the path ingest's decode workers run:

- ``pocketsphinx``: the offline recogniser (its model ships in its wheel);
- ``bench-whisper-small`` and ``bench-whisper``: Whisper small and large-v3-turbo architectures
  with random weights (speed only: their words mean nothing). Random weights rarely write the end
  token, so the decoder writes its whole allowance for every 30 s chunk (``--tokens``, default
  120: about what 30 s of speech at 150 words a minute takes); a trained model stops at the end
  of what was said, so on silence-heavy audio it is faster than this.

Usage:
    .venv/bin/python benchmarks/search/asr.py [--models pocketsphinx,bench-whisper-small,bench-whisper]
        [--tokens 120] [--out benchmarks/search/asr.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def asr_speed(models: list[str], tokens: int = 120, seconds: int = 120) -> dict:
    """Per model: real-time factor on ``seconds`` of real speech and of a tone."""
    from embedder.media.speech import SpeechOptions, transcribe

    work = Path(tempfile.mkdtemp(prefix="asr-"))
    try:
        speech = work / "speech.wav"
        narration = ROOT / "tests" / "data" / "nasa_13013.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-stream_loop", "12", "-i", str(narration), "-map", "0:a:0",
             "-t", str(seconds), "-ac", "1", "-ar", "16000", str(speech)],
            check=True,
        )  # fmt: skip
        tone = work / "tone.wav"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", str(tone)],
            check=True,
        )
        out: dict = {}
        for model in models:
            # the decoder's allowance per chunk: random weights use it all
            options = SpeechOptions(model=model, budget_s=1e9, device="cpu", max_tokens=tokens)
            if model != "pocketsphinx":  # load once, outside the timing, as a decode worker keeps it
                t = time.perf_counter()
                transcribe(str(tone), None, SpeechOptions(model=model, max_s=1.0, device="cpu"))
                out.setdefault(model, {})["load_s"] = round(time.perf_counter() - t, 1)
            for name, path in (("speech", speech), ("tone", tone)):
                t = time.perf_counter()
                transcript = transcribe(str(path), None, options)
                took = time.perf_counter() - t
                out.setdefault(model, {})[name] = {
                    "audio_s": round(transcript.heard_s, 1),
                    "speech_s": round(transcript.speech_s, 1),
                    "seconds": round(took, 2),
                    "real_time_factor": round(took / transcript.heard_s, 3),
                    "lines": len(transcript.lines),
                }
            print(model, json.dumps(out[model]), file=sys.stderr, flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="pocketsphinx,bench-whisper-small,bench-whisper")
    parser.add_argument("--tokens", type=int, default=120, help="decoder tokens per 30 s chunk (random weights)")
    parser.add_argument("--seconds", type=int, default=120, help="audio per measurement")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    results = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "decoder_tokens_per_chunk": args.tokens,
        "asr": asr_speed(args.models.split(","), args.tokens, args.seconds),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
