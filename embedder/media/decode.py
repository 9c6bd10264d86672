"""Everything ingest and inspect need from one file: probe, frames, audio windows, text.

:func:`decode_item` is the unit of work that runs inside an isolated worker process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from embedder.encoders.registry import check_speech_model
from embedder.errors import MediaError, one_line
from embedder.media.audio import AudioWindows, WindowOptions, load_windows
from embedder.media.probe import Limits, ProbeInfo, check_limits, probe
from embedder.media.segments import Segment, SegmentOptions, build_segments, segment_spans
from embedder.media.speech import SpeechOptions, Transcript, transcribe
from embedder.media.text import ItemText, find_subtitles, find_text, parse_cues
from embedder.media.video import SampledFrames, SamplingOptions, sample_frames

if TYPE_CHECKING:
    from embedder.settings import Settings


@dataclass(frozen=True)
class DecodeOptions:
    """Everything a worker needs to decode one file (picklable, no settings object)."""

    sampling: SamplingOptions = SamplingOptions()
    windows: WindowOptions = WindowOptions()
    limits: Limits = Limits()
    probe_timeout_s: float = 30.0
    # ffprobe for every file (inspect: every detail), instead of the header for plain files (ingest)
    exact_probe: bool = False
    thumbnail: bool = True  # make a small JPEG preview (see embedder.media.thumbnail)
    segments: SegmentOptions = SegmentOptions(enabled=False)  # cut the item into moments
    speech: SpeechOptions = SpeechOptions()  # transcribe what is said (model "none": not at all)

    @classmethod
    def from_settings(cls, settings: Settings, image_size: int) -> DecodeOptions:
        """Build options from :class:`embedder.settings.Settings` and the encoder's input size."""
        return cls(
            sampling=SamplingOptions(
                mode=settings.sampling,
                fps=settings.video_fps,
                max_frames=settings.max_frames,
                scene_threshold=settings.scene_threshold,
                image_size=image_size,
                decoder_threads=max(1, (os.cpu_count() or 1) // settings.workers),
                gpu_decode=gpu_decode(settings),
            ),
            windows=WindowOptions(
                window_s=settings.audio_window_s,
                max_windows=settings.max_audio_windows,
                min_last_window_s=settings.min_last_window_s,
            ),
            limits=Limits(
                max_width=settings.max_width,
                max_height=settings.max_height,
                max_duration_s=settings.max_duration_s,
                max_file_mb=settings.max_file_mb,
            ),
            thumbnail=settings.thumbnails,
            segments=SegmentOptions.from_settings(settings),
            speech=SpeechOptions(
                model=check_speech_model(settings.speech_model),
                language=settings.speech_language,
                max_s=settings.speech_max_s,
                budget_s=settings.decode_timeout_s / 2,
                device=settings.device,
                weights_dir=str(settings.weights_dir) if settings.weights_dir else None,
            ),
        )


def gpu_decode(settings: Settings) -> bool:
    """Whether decoders should try the GPU first: asked for, or "auto" with the encoders on CUDA."""
    if settings.video_decoder != "auto":
        return settings.video_decoder == "cuda"
    if settings.device == "cpu":
        return False
    if settings.device.startswith("cuda"):
        return True
    import torch  # "auto" device: the decoders follow the encoders

    return torch.cuda.is_available()


@dataclass
class DecodedItem:
    """One file, decoded: what the encoders take."""

    path: str
    info: ProbeInfo
    frames: SampledFrames | None
    audio: AudioWindows | None
    text: ItemText
    warnings: list[str] = field(default_factory=list)
    thumbnail: bytes | None = None  # JPEG
    segments: list[Segment] | None = None  # the item's moments, when segmenting is on
    segment_thumbnails: list[bytes | None] | None = None  # a small JPEG per segment (video only)
    transcript: Transcript | None = None  # what is said, when speech recognition is on
    subtitle_cues: list | None = None  # the subtitle lines and their times, when the file has subtitles

    @property
    def modalities(self) -> list[str]:
        present = []
        if self.frames is not None:
            present.append("visual")
        if self.audio is not None:
            present.append("audio")
        present.append("text")
        return present

    def summary(self) -> dict:
        """A JSON-friendly description without the pixel and sample data."""
        frames = self.frames
        audio = self.audio
        return {
            "path": self.path,
            "kind": self.info.kind,
            "probe": self.info.to_dict(),
            "video": None
            if frames is None
            else {
                "decoder": frames.decoder,
                "fallback_reason": frames.fallback_reason,
                "stream_index": frames.stream_index,
                "frames": int(frames.frames.shape[0]),
                "item_frames": len(frames.item_frames),  # the rest were added for segments
                "frame_size": [int(frames.frames.shape[2]), int(frames.frames.shape[1])],
                "timestamps": frames.timestamps,
            },
            "audio": None
            if audio is None
            else {
                "stream_index": audio.stream_index,
                "source_rate": audio.source_rate,
                "sample_rate": audio.sample_rate,
                "windows": len(audio.windows),
                "item_windows": len(audio.item_windows),  # the rest were added for segments
                "window_starts": audio.starts,
                "window_durations": audio.durations,
            },
            "text": {"text": self.text.text, "source": self.text.source, "source_path": self.text.source_path},
            "modalities": self.modalities,
            "segments": None
            if self.segments is None
            else [{**s.to_payload(), "frames": len(s.frames), "windows": len(s.windows)} for s in self.segments],
            "transcript": None if self.transcript is None else self.transcript.summary(),
            "warnings": self.warnings,
        }


def decode_item(path: str, options: DecodeOptions) -> DecodedItem:
    """Probe, check limits, sample frames, cut audio windows and find text for one file.

    Raises:
        MediaError: naming the stage ("probe" or "decode") and the reason.
    """
    info = probe(path, options.probe_timeout_s, exact=options.exact_probe)
    check_limits(info, options.limits)
    cut = options.segments if options.segments.enabled else None
    frames = sample_frames(path, info, options.sampling, cut)
    spans = None
    if cut is not None:
        spans = frames.spans if frames is not None else segment_spans(info.duration, [], cut)
    warnings = []
    try:
        audio = load_windows(path, info, options.windows, spans)
    except MediaError as exc:
        if frames is None:
            raise
        audio = None  # a broken soundtrack should not cost the picture; it is reported instead
        warnings.append(f"audio dropped: {exc.reason}")
    if frames is None and audio is None:
        raise MediaError(path, "decode", "neither video frames nor audio could be decoded")
    try:
        subtitles = find_subtitles(path, info)
        text = find_text(path, info, subtitles)
    except OSError as exc:
        raise MediaError(path, "decode", f"reading text: {one_line(exc)}") from None
    thumbnail = _thumbnail(path, info, frames, audio, warnings) if options.thumbnail else None
    item = DecodedItem(
        path=path, info=info, frames=frames, audio=audio, text=text, warnings=warnings, thumbnail=thumbnail
    )
    cues = parse_cues(subtitles.raw) if subtitles is not None else None
    item.subtitle_cues = cues
    if options.speech.enabled and audio is not None:
        try:
            item.transcript = transcribe(path, audio.stream_index, options.speech)
            if item.transcript.complete_to < item.transcript.heard_s:
                warnings.append(
                    f"transcript stops at {item.transcript.complete_to:.0f} s of {item.transcript.heard_s:.0f} s: "
                    "speech recognition ran out of its time (half of decode_timeout_s); raise decode_timeout_s"
                )
        except MediaError as exc:  # the picture and sound are still worth storing; say why no words
            warnings.append(f"no transcript: {exc.reason}")
    if cut is not None:
        item.segments = build_segments(
            spans,
            frames.frame_groups if frames is not None else None,
            audio.window_groups if audio is not None else None,
            cues,
            text.text,
        )
        if options.thumbnail and frames is not None:
            item.segment_thumbnails = _segment_thumbnails(frames, item.segments)
    return item


def _segment_thumbnails(frames: SampledFrames, segments: list[Segment]) -> list[bytes | None]:
    """A small JPEG per segment, from the first of its sampled frames (no extra decoding)."""
    from embedder.media.thumbnail import small_jpeg

    return [small_jpeg(frames.frames[s.frames[0]]) if s.frames else None for s in segments]


def _thumbnail(
    path: str, info: ProbeInfo, frames: SampledFrames | None, audio: AudioWindows | None, warnings: list[str]
) -> bytes | None:
    from embedder.media.thumbnail import video_thumbnail, waveform_thumbnail

    try:
        if frames is not None:
            return video_thumbnail(path, info.best_video, frames.decoder, frames.frames, frames.timestamps)
        return waveform_thumbnail(audio.windows)
    except Exception as exc:  # a preview is never worth failing the file for; say why there is none
        warnings.append(f"no thumbnail: {one_line(exc, 200)}")
        return None
