"""Sample RGB frames from a video with bounded memory.

decord is the default decoder. When it cannot open a file (AV1, for one) or would read another
stream than the one probing chose, torchcodec's ``VideoDecoder`` takes over. Frames are resized
at decode time so that the shorter side matches the encoder's input, and only the sampled frames
are ever decoded, so memory depends on ``max_frames``, not on the video's length.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from embedder.errors import MediaError, one_line
from embedder.media.probe import ProbeInfo, VideoStream

DECODE_CHUNK = 16  # frames decoded per call: bounds peak memory in scene mode
SCENE_CANDIDATE_FPS = 4.0
SCENE_MAX_CANDIDATES = 480
# Cutting moments needs a shot's start to within half a second (a segment is ~10 s), not the
# 4-per-second precision of scene sampling: one candidate per second, and none at all when the
# item's own samples are already that dense (a clip up to max_frames seconds long at 1 fps).
SEGMENT_CUT_FPS = 1.0


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick frames. ``image_size`` is the encoder's input side in pixels."""

    mode: str = "uniform"  # "uniform" or "scene"
    fps: float = 1.0
    max_frames: int = 32
    scene_threshold: float = 0.12
    image_size: int = 224
    # Threads each decoder may use: the cores the decoder processes leave free (1 when there are
    # as many processes as cores, so they never compete).
    decoder_threads: int = 1
    # Try the GPU's video decoder (NVDEC, through torchcodec) first; the CPU decoders stay the
    # fallback, with the reason kept in ``fallback_reason``.
    gpu_decode: bool = False


@dataclass
class SampledFrames:
    """Decoded frames (uint8, N x H x W x 3) with their presentation times in seconds."""

    frames: np.ndarray
    timestamps: list[float]
    decoder: str
    stream_index: int
    fallback_reason: str | None = None
    # With segments: the first ``item_count`` frames are the item's samples (pooled into its
    # visual vector); the rest are extra frames for segments that had none. ``spans`` and
    # ``frame_groups`` say which frames each segment holds (embedder.media.segments).
    item_count: int | None = None
    spans: list[tuple[float, float]] | None = None
    frame_groups: list[list[int]] | None = None

    @property
    def item_frames(self) -> np.ndarray:
        """The frames that make the item's own visual vector."""
        return self.frames if self.item_count is None else self.frames[: self.item_count]


def uniform_timestamps(duration: float, fps: float, max_frames: int) -> list[float]:
    """Times at ``fps`` frames per second, centred in each interval, spread evenly if over the cap.

    A video of unknown or zero duration gets one frame at 0.
    """
    if duration <= 0:
        return [0.0]
    count = max(1, int(math.floor(duration * fps)))
    if count <= max_frames:
        return [round((i + 0.5) / fps, 6) for i in range(count)]
    return [round(duration * (i + 0.5) / max_frames, 6) for i in range(max_frames)]


def target_size(width: int, height: int, image_size: int) -> tuple[int, int]:
    """(height, width) with the shorter side equal to ``image_size``, keeping the aspect ratio.

    Frames are never upscaled past the encoder's size only to be cropped: the encoder crops the
    centre square, so this is the smallest frame that loses nothing it will see.
    """
    if width <= 0 or height <= 0:
        return image_size, image_size
    scale = image_size / min(width, height)
    return max(image_size, round(height * scale)), max(image_size, round(width * scale))


class _WrongStream(Exception):
    """decord opened the file but reads another stream than the one probing chose."""


class _Decoder:
    name = "?"

    def frames_at(self, times: list[float]) -> tuple[np.ndarray, list[float]]:
        raise NotImplementedError


class _DecordDecoder(_Decoder):
    name = "decord"

    def __init__(self, path: str, stream: VideoStream, size: tuple[int, int], threads: int = 1):
        import decord

        self.reader = decord.VideoReader(path, ctx=decord.cpu(0), width=size[1], height=size[0], num_threads=threads)
        self.count = len(self.reader)
        if self.count <= 0:
            raise RuntimeError("decord reports no frames")
        # decord always reads ffmpeg's "best" stream; accept it only if it is the stream we chose.
        fps = self.reader.get_avg_fps()
        if stream.fps and abs(fps - stream.fps) > 0.01 * stream.fps:
            raise _WrongStream(f"decord reads a {fps:.3f} fps stream, not stream {stream.index}")
        if stream.frames and abs(self.count - stream.frames) > max(2, 0.02 * stream.frames):
            raise _WrongStream(f"decord reads {self.count} frames, stream {stream.index} has {stream.frames}")
        self._starts: np.ndarray | None = None

    def _frame_starts(self) -> np.ndarray:
        if self._starts is None:  # one float pair per frame: cheap even for long videos
            self._starts = np.asarray(self.reader.get_frame_timestamp(range(self.count)))[:, 0]
        return self._starts

    def frames_at(self, times):
        starts = self._frame_starts()
        idx = np.clip(np.searchsorted(starts, np.asarray(times) + 1e-6, side="right") - 1, 0, self.count - 1)
        batch = self.reader.get_batch(list(int(i) for i in idx)).asnumpy()
        return batch, [float(starts[i]) for i in idx]


class _TorchcodecDecoder(_Decoder):
    name = "torchcodec"

    def __init__(self, path: str, stream: VideoStream, size: tuple[int, int], threads: int = 1):
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import Resize

        self.decoder = VideoDecoder(
            path,
            stream_index=stream.index,
            dimension_order="NHWC",
            num_ffmpeg_threads=threads,
            transforms=[Resize(size=list(size))],
        )
        meta = self.decoder.metadata
        self.begin = float(meta.begin_stream_seconds or 0.0)
        self.end = float(meta.end_stream_seconds or 0.0)

    def frames_at(self, times):
        last = max(self.begin, self.end - 1e-3)
        clipped = [min(max(t, self.begin), last) for t in times]
        batch = self.decoder.get_frames_played_at(seconds=clipped)
        frames = batch.data.numpy()
        if frames.dtype != np.uint8:  # 10-bit sources may come back wider
            frames = (frames.astype(np.float32) / float(np.iinfo(frames.dtype).max) * 255).astype(np.uint8)
        return frames, [float(t) for t in batch.pts_seconds]


class _TorchcodecCudaDecoder(_Decoder):
    """NVDEC through torchcodec: frames decoded on the GPU, resized there, copied to the host once."""

    name = "torchcodec-cuda"

    def __init__(self, path: str, stream: VideoStream, size: tuple[int, int], threads: int = 1):
        import torch
        from torchcodec.decoders import VideoDecoder

        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device")
        self.size = size
        self.decoder = VideoDecoder(path, stream_index=stream.index, dimension_order="NCHW", device="cuda")
        meta = self.decoder.metadata
        self.begin = float(meta.begin_stream_seconds or 0.0)
        self.end = float(meta.end_stream_seconds or 0.0)

    def frames_at(self, times):
        import torch
        import torch.nn.functional as F

        last = max(self.begin, self.end - 1e-3)
        batch = self.decoder.get_frames_played_at(seconds=[min(max(t, self.begin), last) for t in times])
        frames = batch.data.float()
        if batch.data.dtype != torch.uint8:  # 10-bit sources may come back wider
            frames = frames / float(torch.iinfo(batch.data.dtype).max) * 255
        resized = F.interpolate(frames, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        host = resized.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return host, [float(t) for t in batch.pts_seconds]


def _clean(exc: Exception) -> str:
    """Decoder errors carry build paths, source lines and clock times; keep the readable part."""
    text = one_line(exc, 600)
    if "ERROR " in text:  # decord: "[12:00:00] /src/video_reader.cc:151: Check failed ... ERROR why"
        text = text[text.rindex("ERROR ") + 6 :]
    text = re.sub(r"\[[\d:]+\]\s*", "", text)
    text = re.sub(r"[\w./-]*\w+\.(?:cc|cpp|c|h|hpp):\d+:?,?\s*", "", text)
    text = re.sub(r"^\w+, ", "", text)  # torchcodec prefixes the C++ function name
    return text.strip()[:200]


DECODERS = {"decord": _DecordDecoder, "torchcodec": _TorchcodecDecoder, "torchcodec-cuda": _TorchcodecCudaDecoder}


def _open(name: str, path: str, stream: VideoStream, size: tuple[int, int], threads: int = 1) -> _Decoder:
    return DECODERS[name](path, stream, size, threads)


def _decode(decoder: _Decoder, times: list[float]) -> tuple[np.ndarray, list[float]]:
    chunks, stamps = [], []
    for start in range(0, len(times), DECODE_CHUNK):
        frames, ts = decoder.frames_at(times[start : start + DECODE_CHUNK])
        chunks.append(frames)
        stamps.extend(ts)
    return np.concatenate(chunks, axis=0), stamps


def _thumbnail(frames: np.ndarray) -> np.ndarray:
    """16x16 colour thumbnails in [0, 1]: enough to see a cut (even red to blue), cheap to compare."""
    n, h, w, c = frames.shape
    hs, ws = max(1, h // 16), max(1, w // 16)
    blocks = frames[:, : hs * 16, : ws * 16].reshape(n, 16, hs, 16, ws, c)
    # Integer sums, one axis at a time: exact, and ~10x faster than a float mean over two axes.
    sums = blocks.sum(axis=2, dtype=np.uint32).sum(axis=3, dtype=np.uint32)
    return sums.astype(np.float32) / (hs * ws * 255.0)


def _cut_indices(thumbs: np.ndarray, threshold: float, limit: int) -> list[int]:
    """Indices of the frames that start a new shot (0 first), the strongest ``limit`` in time order."""
    change = np.abs(np.diff(thumbs, axis=0)).mean(axis=(1, 2, 3))
    cuts = [i + 1 for i in np.argsort(-change) if change[i] >= threshold]
    return sorted({0, *cuts[: limit - 1]})


def _candidates(decoder: _Decoder, duration: float, fps: float) -> tuple[np.ndarray, list[float]]:
    """Thumbnails and times of frames read at ``fps`` (in small chunks: memory stays bounded)."""
    candidates = uniform_timestamps(duration, fps, SCENE_MAX_CANDIDATES)
    thumbs, stamps = [], []
    for start in range(0, len(candidates), DECODE_CHUNK):
        frames, ts = decoder.frames_at(candidates[start : start + DECODE_CHUNK])
        thumbs.append(_thumbnail(frames))
        stamps.extend(ts)
    return np.concatenate(thumbs, axis=0), stamps


def scene_timestamps(
    decoder: _Decoder, duration: float, opts: SamplingOptions, limit: int | None = None
) -> list[float]:
    """Times where the picture changes: the first frame plus cuts over ``scene_threshold``.

    Candidates are read at a few frames per second and reduced to thumbnails. When there are more
    cuts than ``limit`` (default ``max_frames``), the strongest are kept.
    """
    thumbs, stamps = _candidates(decoder, duration, SCENE_CANDIDATE_FPS)
    chosen = _cut_indices(thumbs, opts.scene_threshold, limit or opts.max_frames)
    # Several candidates can map to the same decoded frame in short clips; keep times unique.
    return sorted({stamps[i] for i in chosen})


def _segment_cuts(
    decoder: _Decoder,
    duration: float,
    times: list[float],
    frames: np.ndarray,
    stamps: list[float],
    opts: SamplingOptions,
    segments,
) -> list[float]:
    """Where the shots start, for cutting segments: the sampled times in scene mode; else halfway
    between the frames either side of each cut, found among the samples themselves when they are
    dense enough, otherwise among candidates read at SEGMENT_CUT_FPS."""
    if segments.mode != "shots":
        return []
    if opts.mode == "scene":
        return times
    if len(times) > 1 and duration / len(times) <= 1.0 / SEGMENT_CUT_FPS + 1e-6:
        thumbs = _thumbnail(frames)
    else:
        thumbs, stamps = _candidates(decoder, duration, SEGMENT_CUT_FPS)
    chosen = _cut_indices(thumbs, opts.scene_threshold, segments.max_segments)
    return sorted({round((stamps[i - 1] + stamps[i]) / 2, 4) for i in chosen if i > 0})


def sample_frames(path: str, info: ProbeInfo, opts: SamplingOptions, segments=None) -> SampledFrames | None:
    """Decode the sampled frames of the best video stream, or ``None`` for an audio-only file.

    With ``segments`` (:class:`~embedder.media.segments.SegmentOptions`), the video is also cut
    into segments (at its shots in "shots" mode), and a frame is added in each segment that no
    sample falls in; the item's own samples, and so its visual vector, are the same as without.

    decord is tried first (after torchcodec's CUDA decoder, with ``gpu_decode``); if it cannot open
    the file, reads another stream, or fails while reading, torchcodec decodes the same
    timestamps on the CPU and the reason is kept in the result.

    Raises:
        MediaError: stage "decode", when no decoder can read the stream.
    """
    stream = info.best_video
    if stream is None:
        return None
    size = target_size(stream.width, stream.height, opts.image_size)
    duration = stream.duration or info.duration
    reasons: list[str] = []
    for name in (("torchcodec-cuda",) if opts.gpu_decode else ()) + ("decord", "torchcodec"):
        try:
            decoder = _open(name, path, stream, size, opts.decoder_threads)
            if opts.mode == "scene":
                times = scene_timestamps(decoder, duration, opts)
            else:
                times = uniform_timestamps(duration, opts.fps, opts.max_frames)
            frames, stamps = _decode(decoder, times)
            layout = None
            if segments is not None and segments.enabled:
                from embedder.media.segments import frames_for_segments, segment_spans

                spans = segment_spans(
                    duration, _segment_cuts(decoder, duration, times, frames, stamps, opts, segments), segments
                )
                groups, extra = frames_for_segments(spans, times)
                if extra:  # a frame in each segment the item's samples missed
                    more, more_stamps = _decode(decoder, extra)
                    frames, stamps = np.concatenate([frames, more]), stamps + more_stamps
                layout = (spans, groups)
        except Exception as exc:  # decord raises its own types; any failure moves to the next decoder
            reasons.append(f"{name}: {_clean(exc)}")
            continue
        if frames.ndim != 4 or frames.shape[0] == 0:
            reasons.append(f"{name}: returned no frames")
            continue
        return SampledFrames(
            frames=np.ascontiguousarray(frames),
            timestamps=[round(t, 4) for t in stamps],
            decoder=name,
            stream_index=stream.index,
            fallback_reason="; ".join(reasons) or None,
            item_count=len(times) if layout else None,
            spans=layout[0] if layout else None,
            frame_groups=layout[1] if layout else None,
        )
    raise MediaError(path, "decode", "no decoder could read the video (" + "; ".join(reasons) + ")")
