"""Read a file's streams before any frame is decoded, and enforce size limits.

Two readers give the same :class:`ProbeInfo`:

- ffprobe, as a separate process with a timeout, so a file that makes the demuxer hang costs one
  failure record, not the run. It sees everything (dispositions, subtitle languages, both frame
  rates), but starting it costs ~75 ms of CPU per file (it loads ~200 shared libraries), more
  than decoding the frames of a short clip.
- the container header, read in-process by torchcodec in a few milliseconds. Ingest uses it for
  plain files (at most one video and one audio stream, nothing else, no still picture), which
  are the bulk of a library; any other file, and any file the header reader cannot open, goes to
  ffprobe, whose answer (or error) is the reference. Decoding runs in an isolated worker with its
  own timeout, so reading the header there keeps the hang protection.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from embedder.errors import MediaError, one_line

PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str
    width: int
    height: int
    fps: float  # average frame rate; 0 when unknown
    frames: int | None  # as reported by the container; may be absent or wrong
    duration: float | None
    pix_fmt: str | None
    bit_depth: int | None
    variable_frame_rate: bool | None  # None: the header alone could not tell
    default: bool


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: float | None
    default: bool


@dataclass(frozen=True)
class SubtitleStream:
    index: int
    codec: str
    language: str | None


@dataclass(frozen=True)
class ProbeInfo:
    """What a file holds, read from its headers."""

    path: str
    format: str  # the container format's name; "" when read from the header
    duration: float  # seconds; 0 when unknown
    size: int
    video: list[VideoStream] = field(default_factory=list)
    audio: list[AudioStream] = field(default_factory=list)
    subtitles: list[SubtitleStream] = field(default_factory=list)
    reader: str = "ffprobe"  # or "header" (see the module's docstring)

    @property
    def kind(self) -> str:
        """ "video" when a real picture stream exists, else "audio", else "other"."""
        if self.video:
            return "video"
        return "audio" if self.audio else "other"

    @property
    def best_video(self) -> VideoStream | None:
        """The stream to sample: largest picture, then higher frame rate, then the default."""
        if not self.video:
            return None
        return max(self.video, key=lambda s: (s.width * s.height, s.fps, s.default, -s.index))

    @property
    def best_audio(self) -> AudioStream | None:
        """The audio stream ffmpeg would pick: the default, then the most channels and rate."""
        if not self.audio:
            return None
        return max(self.audio, key=lambda s: (s.default, s.channels, s.sample_rate, -s.index))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kind"] = self.kind
        data["best_video_index"] = self.best_video.index if self.best_video else None
        return data


@dataclass(frozen=True)
class Limits:
    """Files over any of these are refused before decoding."""

    max_width: int = 7680
    max_height: int = 4320
    max_duration_s: float = 4 * 3600.0
    max_file_mb: float = 20_000.0


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value) if value > 0 else 0.0


def _float(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def _int(text) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _bit_depth(pix_fmt: str | None) -> int | None:
    """Bits per sample read from a pixel format's name (yuv420p10le: 10), when nothing says it."""
    if not pix_fmt:
        return None
    return 10 if "10" in pix_fmt else 12 if "12" in pix_fmt else 8


def parse_ffprobe(path: str, data: dict) -> ProbeInfo:
    """Turn ffprobe's JSON into a :class:`ProbeInfo`."""
    fmt = data.get("format") or {}
    video, audio, subs = [], [], []
    for s in data.get("streams") or []:
        kind = s.get("codec_type")
        disposition = s.get("disposition") or {}
        default = bool(disposition.get("default"))
        if kind == "video":
            if disposition.get("attached_pic"):  # cover art in an audio file is not video
                continue
            avg, real = _rate(s.get("avg_frame_rate")), _rate(s.get("r_frame_rate"))
            pix_fmt = s.get("pix_fmt")
            depth = _int(s.get("bits_per_raw_sample"))
            if depth is None:
                depth = _bit_depth(pix_fmt)
            video.append(
                VideoStream(
                    index=int(s["index"]),
                    codec=s.get("codec_name") or "unknown",
                    width=int(s.get("width") or 0),
                    height=int(s.get("height") or 0),
                    fps=avg or real,
                    frames=_int(s.get("nb_frames")),
                    duration=_float(s.get("duration")),
                    pix_fmt=pix_fmt,
                    bit_depth=depth,
                    variable_frame_rate=bool(avg and real and abs(avg - real) > 0.01 * real),
                    default=default,
                )
            )
        elif kind == "audio":
            audio.append(
                AudioStream(
                    index=int(s["index"]),
                    codec=s.get("codec_name") or "unknown",
                    sample_rate=_int(s.get("sample_rate")) or 0,
                    channels=int(s.get("channels") or 0),
                    duration=_float(s.get("duration")),
                    default=default,
                )
            )
        elif kind == "subtitle":
            subs.append(
                SubtitleStream(
                    index=int(s["index"]),
                    codec=s.get("codec_name") or "unknown",
                    language=(s.get("tags") or {}).get("language"),
                )
            )
    duration = _float(fmt.get("duration"))
    if duration is None:
        durations = [s.duration for s in (*video, *audio) if s.duration]
        duration = max(durations) if durations else 0.0
    return ProbeInfo(
        path=path,
        format=fmt.get("format_name") or "unknown",
        duration=duration,
        size=_int(fmt.get("size")) or 0,
        video=video,
        audio=audio,
        subtitles=subs,
    )


# Codecs of still pictures: a video stream in one of these may be cover art, which only ffprobe's
# "attached_pic" disposition tells apart from a video.
STILL_PICTURE_CODECS = frozenset(
    {
        "mjpeg",
        "png",
        "bmp",
        "gif",
        "webp",
        "tiff",
        "jpeg2000",
        "jpegls",
        "ljpeg",
        "targa",
        "ppm",
        "pgm",
        "qoi",
        "avif",
        "heic",
    }
)


def _header_info(path: str) -> ProbeInfo | None:
    """The :class:`ProbeInfo` of a plain file from its container header, or ``None`` to ask ffprobe.

    Plain: one video stream (not a still picture) and/or one audio stream, nothing else, with
    every number decoding needs present. The average frame rate is frames / duration when the
    header has both (ffprobe's definition); variable frame rate is read by comparing it with the
    stream's nominal rate, and is ``None`` (unknown) when the header lacks the frame count.
    """
    try:
        from torchcodec.decoders import get_container_metadata

        meta = get_container_metadata(path)
        size = Path(path).stat().st_size
    except Exception:  # unreadable here: ffprobe decides, and names the reason
        return None
    kinds = [s.media_type for s in meta.streams]
    if any(k not in ("video", "audio") for k in kinds) or kinds.count("video") > 1 or kinds.count("audio") > 1:
        return None
    video, audio = [], []
    for s in meta.streams:
        if s.media_type == "video":
            nominal = float(s.average_fps_from_header or 0.0)
            frames, duration = s.num_frames_from_header, s.duration_seconds_from_header
            if (s.codec or "") in STILL_PICTURE_CODECS or frames == 1 or not (s.width and s.height and nominal > 0):
                return None
            average = frames / duration if frames and duration else nominal
            pix_fmt = s.pixel_format
            video.append(
                VideoStream(
                    index=s.stream_index,
                    codec=s.codec or "unknown",
                    width=int(s.width),
                    height=int(s.height),
                    fps=average,
                    frames=frames,
                    duration=duration,
                    pix_fmt=pix_fmt,
                    bit_depth=_bit_depth(pix_fmt),
                    variable_frame_rate=abs(average - nominal) > 0.01 * nominal if frames and duration else None,
                    default=True,  # the only video stream: the one ffmpeg picks
                )
            )
        else:
            if not (s.sample_rate and s.num_channels):
                return None
            audio.append(
                AudioStream(
                    index=s.stream_index,
                    codec=s.codec or "unknown",
                    sample_rate=int(s.sample_rate),
                    channels=int(s.num_channels),
                    duration=s.duration_seconds_from_header,
                    default=True,
                )
            )
    streams = [s.duration for s in (*video, *audio) if s.duration]
    duration = meta.duration_seconds_from_header or (max(streams) if streams else 0.0)
    if duration <= 0 or not (video or audio):
        return None
    return ProbeInfo(
        path=path, format="", duration=float(duration), size=size, video=video, audio=audio, reader="header"
    )


def probe(path: str | Path, timeout_s: float = PROBE_TIMEOUT_S, exact: bool = True) -> ProbeInfo:
    """Read streams, duration and resolution of ``path``.

    With ``exact`` (the default) ffprobe reads the file. Without it, a plain file is read from its
    container header in-process (see the module's docstring), which ingest uses for speed.

    Raises:
        MediaError: stage "probe", when ffprobe is missing, times out, or cannot read the file.
    """
    path = str(path)
    if not exact:
        info = _header_info(path)
        if info is not None:
            return info
    exe = shutil.which("ffprobe")
    if exe is None:
        raise MediaError(path, "probe", "ffprobe not found; install FFmpeg (apt-get install ffmpeg)")
    cmd = [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise MediaError(path, "probe", f"ffprobe timed out after {timeout_s:g}s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = err[-1] if err else f"ffprobe exited with {proc.returncode}"
        raise MediaError(path, "probe", one_line(reason.replace(f"{path}: ", "").replace(path, "<file>")))
    try:
        data = json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise MediaError(path, "probe", f"unreadable ffprobe output: {exc}") from None
    info = parse_ffprobe(path, data)
    if info.kind == "other":
        raise MediaError(path, "probe", "no audio or video stream")
    return info


def check_limits(info: ProbeInfo, limits: Limits) -> None:
    """Refuse a file that is over the limits, before any frame is allocated.

    Raises:
        MediaError: stage "probe", naming the limit and the value found.
    """
    mb = info.size / 1e6
    if mb > limits.max_file_mb:
        raise MediaError(info.path, "probe", f"file is {mb:.0f} MB, over the {limits.max_file_mb:g} MB limit")
    if info.duration > limits.max_duration_s:
        raise MediaError(
            info.path, "probe", f"duration {info.duration:.0f}s is over the {limits.max_duration_s:g}s limit"
        )
    best = info.best_video
    if best is not None:
        if best.width > limits.max_width or best.height > limits.max_height:
            raise MediaError(
                info.path,
                "probe",
                f"resolution {best.width}x{best.height} is over the {limits.max_width}x{limits.max_height} limit",
            )
        if best.width <= 0 or best.height <= 0:
            raise MediaError(info.path, "probe", "video stream has no valid resolution")
