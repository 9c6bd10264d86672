"""Moments: an item cut into time segments, each with its own frames, audio windows and text.

A video is cut at its shots (the scene detector's cuts) where it has them; a shot longer than
about 1.5 segment lengths, and a file without cuts, is cut into even windows of about
``segment_s`` seconds. Audio files are cut into windows. Each segment then takes:

* the sampled frames whose time falls inside it (the item's own samples, plus one extra frame
  in the middle of a segment that has none, so every segment of a long video is seen);
* the audio windows that overlap it most (plus an extra window at its start when none does);
* the subtitle lines shown during it (:func:`embedder.media.text.parse_cues`), or the item's
  text when the file has no subtitles.

Everything here is pure: the decoders call :func:`segment_spans` and the ``*_for_segments``
helpers, and embedding pools the encoded units per segment (:func:`embedder.embedding.embed_items`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from embedder.media.text import Cue

SEGMENTING_VERSION = 1  # bump when the cutting rule changes, so 'reembed' rebuilds the segments
MIN_SEGMENT_S = 1.0  # shorter shots are merged into the one before: a flash is not a moment
SPLIT_FACTOR = 1.5  # a shot longer than this many segment lengths is cut into windows


@dataclass(frozen=True)
class SegmentOptions:
    """How to cut items into moments (picklable: it travels to the decode workers)."""

    enabled: bool = True
    mode: str = "shots"  # "shots": scene cuts, then windows inside long shots; "windows": windows only
    segment_s: float = 10.0
    max_segments: int = 360  # per item; longer files get longer segments

    @classmethod
    def from_settings(cls, settings) -> SegmentOptions:
        """The options :class:`embedder.settings.Settings` name."""
        return cls(
            enabled=settings.segments,
            mode=settings.segment_mode,
            segment_s=settings.segment_s,
            max_segments=settings.max_segments,
        )

    def stamp(self) -> dict:
        """What the stored segments were cut by (``reembed`` compares it with the settings)."""
        return {
            "version": SEGMENTING_VERSION,
            "mode": self.mode,
            "segment_s": self.segment_s,
            "max_segments": self.max_segments,
        }


@dataclass
class Segment:
    """One moment of an item: its time span, text, and the frames and audio windows under it
    (indices into the item's sampled frames and windows)."""

    start: float
    end: float
    text: str = ""
    frames: list[int] = field(default_factory=list)
    windows: list[int] = field(default_factory=list)
    subtitled: bool = False  # ``text`` is the subtitle lines shown during it (not the item's text)

    def to_payload(self) -> dict:
        """What a point stores about the segment (the vectors live in the ``segments`` multivector):
        its times, and its subtitle lines when the file has subtitles."""
        out = {"start": round(self.start, 3), "end": round(self.end, 3)}
        if self.subtitled and self.text:
            out["subtitle"] = self.text[:300]
        return out


def _windows(start: float, end: float, length: float) -> list[tuple[float, float]]:
    count = max(1, round((end - start) / length))
    step = (end - start) / count
    return [(start + i * step, start + (i + 1) * step) for i in range(count)]


def segment_spans(duration: float, cuts: list[float], opts: SegmentOptions) -> list[tuple[float, float]]:
    """The (start, end) of each segment of an item ``duration`` seconds long with scene ``cuts``.

    Segments cover the whole item without gaps. At most ``opts.max_segments``: a longer file gets
    proportionally longer windows.
    """
    if duration <= 0:
        return [(0.0, 0.0)]
    length = max(opts.segment_s, duration / opts.max_segments)
    bounds = [0.0]
    if opts.mode == "shots":
        for cut in sorted(c for c in cuts if 0 < c < duration):
            if cut - bounds[-1] >= MIN_SEGMENT_S:
                bounds.append(cut)
    if duration - bounds[-1] < MIN_SEGMENT_S and len(bounds) > 1:
        bounds.pop()  # a last flash joins the shot before it
    bounds.append(duration)
    spans: list[tuple[float, float]] = []
    for start, end in zip(bounds, bounds[1:]):
        spans.extend(_windows(start, end, length) if end - start > SPLIT_FACTOR * length else [(start, end)])
    while len(spans) > opts.max_segments:  # many short shots: join neighbours pairwise
        spans = [(spans[i][0], spans[min(i + 1, len(spans) - 1)][1]) for i in range(0, len(spans), 2)]
    return [(round(s, 4), round(e, 4)) for s, e in spans]


def frames_for_segments(spans: list[tuple[float, float]], times: list[float]) -> tuple[list[list[int]], list[float]]:
    """Which sampled frames (by time) fall in each span, and the extra frame times needed so that
    every span has one (its middle). Extra frames are numbered after the sampled ones."""
    groups: list[list[int]] = [[] for _ in spans]
    for index, t in enumerate(times):
        groups[_span_of(spans, t)].append(index)
    extra: list[float] = []
    for k, (start, end) in enumerate(spans):
        if not groups[k]:
            groups[k].append(len(times) + len(extra))
            extra.append(round((start + end) / 2, 4))
    return groups, extra


def windows_for_segments(
    spans: list[tuple[float, float]], starts: list[float], window_s: float, duration: float
) -> tuple[list[list[int]], list[float]]:
    """Which audio windows lie mostly inside each span (60% of the shorter of window and span),
    and the extra window starts (a span's start) needed so that every span has one."""
    groups: list[list[int]] = []
    extra: list[float] = []
    for start, end in spans:
        overlaps = [(min(end, s + window_s) - max(start, s), i) for i, s in enumerate(starts)]
        overlaps = [(o, i) for o, i in overlaps if o > 0]
        need = 0.6 * min(window_s, end - start)
        chosen = [i for o, i in overlaps if o >= need]
        if not chosen and start < duration:  # (duration 0: regrouping decoded windows, add none)
            chosen = [len(starts) + len(extra)]
            extra.append(round(start, 4))
        groups.append(chosen)
    return groups, extra


def _span_of(spans: list[tuple[float, float]], t: float) -> int:
    for k, (_, end) in enumerate(spans):
        if t < end:
            return k
    return len(spans) - 1


def cue_text(cues: list[Cue], start: float, end: float) -> str:
    """The subtitle lines shown during [start, end), in order, without repeats."""
    out: list[str] = []
    for cue in cues:
        if cue.end > start and cue.start < end and (not out or out[-1] != cue.text):
            out.append(cue.text)
    return " ".join(out)


def build_segments(spans, frame_groups, window_groups, cues: list[Cue] | None, item_text: str) -> list[Segment]:
    """The segments of one item from its spans and the frame and window groups under them."""
    out = []
    for k, (start, end) in enumerate(spans):
        text = cue_text(cues, start, end) if cues else item_text
        out.append(
            Segment(
                start,
                end,
                text,
                frame_groups[k] if frame_groups else [],
                window_groups[k] if window_groups else [],
                subtitled=bool(cues),
            )
        )
    return out


def seconds(value: float) -> str:
    """``73.5`` -> ``1:13.5``: a moment's time as a person reads it."""
    minutes, rest = divmod(max(0.0, value), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{minutes}:{rest:04.1f}" if not hours else f"{hours}:{minutes:02d}:{rest:04.1f}"
