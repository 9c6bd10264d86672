"""Audio windows for CLAP: mono, 48 kHz, fixed-length windows.

Windows are read one at a time with ``torchaudio.load(frame_offset, num_frames)``, so memory is
one window whatever the file's length. When a file has more windows than the cap, windows are
spread evenly over its length rather than taken from the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from embedder.errors import MediaError, one_line
from embedder.media.probe import ProbeInfo

TARGET_RATE = 48_000  # CLAP's sample rate


@dataclass(frozen=True)
class WindowOptions:
    window_s: float = 10.0
    max_windows: int = 30
    min_last_window_s: float = 1.0


@dataclass
class AudioWindows:
    """Mono 48 kHz windows; the last may be shorter than ``window_s`` (the encoder pads it)."""

    windows: list[np.ndarray]
    starts: list[float]
    sample_rate: int
    stream_index: int
    source_rate: int
    # With segments: the first ``item_count`` windows make the item's audio vector; the rest were
    # added for segments no window covered. ``window_groups``: the windows under each segment.
    item_count: int | None = None
    window_groups: list[list[int]] | None = None

    @property
    def item_windows(self) -> list[np.ndarray]:
        """The windows that make the item's own audio vector."""
        return self.windows if self.item_count is None else self.windows[: self.item_count]

    @property
    def durations(self) -> list[float]:
        return [round(len(w) / self.sample_rate, 4) for w in self.windows]


def window_starts(duration: float, opts: WindowOptions) -> list[float]:
    """Start times of the windows to encode.

    Every full window counts; a trailing partial window counts when it lasts at least
    ``min_last_window_s`` or when it is the only one. Over ``max_windows``, an even spread is kept.
    """
    if duration <= 0:
        return [0.0]
    full = int(math.floor(duration / opts.window_s + 1e-9))
    rest = duration - full * opts.window_s
    count = full + (1 if rest >= max(opts.min_last_window_s, 1e-3) or full == 0 else 0)
    starts = [i * opts.window_s for i in range(count)]
    if count > opts.max_windows:
        picks = np.linspace(0, count - 1, opts.max_windows).round().astype(int)
        starts = [starts[i] for i in sorted(set(picks.tolist()))]
    return [round(s, 6) for s in starts]


def _is_no_audio(exc: Exception) -> bool:
    return "best audio stream is unknown" in str(exc) or "no audio stream" in str(exc).lower()


def load_windows(
    path: str, info: ProbeInfo, opts: WindowOptions, spans: list[tuple[float, float]] | None = None
) -> AudioWindows | None:
    """Decode the audio windows of ``path``; ``None`` when the file has no audio stream.

    With segment ``spans``, a window is added at the start of each segment that no window
    overlaps, and the windows under each segment are recorded; the item's own windows, and so its
    audio vector, are the same as without.

    Raises:
        MediaError: stage "decode", when an audio stream exists but cannot be decoded.
    """
    stream = info.best_audio
    if stream is None:
        return None
    import torch
    import torchaudio
    import torchaudio.functional as AF

    duration = stream.duration or info.duration
    windows, starts = [], []
    source_rate = stream.sample_rate
    planned = window_starts(duration, opts)
    extra: list[float] = []
    if spans is not None:
        from embedder.media.segments import windows_for_segments

        _, extra = windows_for_segments(spans, planned, opts.window_s, duration)
    item_count = 0
    for number, start in enumerate(planned + extra):
        try:
            wave, rate = torchaudio.load(
                path,
                frame_offset=int(round(start * source_rate)),
                num_frames=int(round(opts.window_s * source_rate)),
            )
        except RuntimeError as exc:
            if _is_no_audio(exc):
                return None
            raise MediaError(path, "decode", f"audio: {one_line(exc, 200)}") from None
        if wave.numel() == 0:
            continue  # the container over-reported the duration; the real audio ended earlier
        source_rate = rate
        mono = wave.to(torch.float32).mean(dim=0)
        if rate != TARGET_RATE:
            mono = AF.resample(mono, rate, TARGET_RATE)
        windows.append(mono.numpy().astype(np.float32, copy=False))
        starts.append(start)
        item_count += number < len(planned)
    if not windows or not item_count:
        raise MediaError(path, "decode", "audio stream decoded to no samples")
    out = AudioWindows(
        windows=windows, starts=starts, sample_rate=TARGET_RATE, stream_index=stream.index, source_rate=source_rate
    )
    if spans is not None:
        from embedder.media.segments import windows_for_segments

        # Grouped by the windows that really decoded (a container may over-report its length).
        out.item_count = item_count
        out.window_groups, _ = windows_for_segments(spans, starts, opts.window_s, 0.0)
    return out
