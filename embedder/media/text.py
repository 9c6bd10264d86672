"""The text modality of an item: sidecar metadata, then subtitles, then the file name."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from embedder.media.probe import ProbeInfo

MAX_TEXT_CHARS = 2000  # CLIP reads 77 tokens; keep a little more for display and for CLAP
SUBTITLE_TIMEOUT_S = 30.0
TEXT_SUBTITLE_CODECS = {"subrip", "srt", "mov_text", "webvtt", "ass", "ssa", "text"}
_TIMING = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2})?[.,]\d{3}\s*-->")
_TAGS = re.compile(r"<[^>]+>|\{[^}]*\}")


@dataclass(frozen=True)
class ItemText:
    text: str
    source: str  # sidecar-json | sidecar-txt | subtitles | embedded-subtitles | filename
    source_path: str | None = None


def _sidecars(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    out = []
    for suffix in suffixes:
        for candidate in (path.with_suffix(suffix), path.with_name(path.name + suffix)):
            # os.path.isfile, not Path.is_file: a sidecar name past NAME_MAX (a 254-character media
            # name plus ".json") raises ENAMETOOLONG there, and such a sidecar simply cannot exist.
            if os.path.isfile(candidate) and candidate not in out:
                out.append(candidate)
    return out


def _from_json(file: Path) -> str | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    parts = []
    for key in ("title", "description", "summary", "caption"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            parts.append(value.strip())
    tags = data.get("tags") or data.get("keywords")
    if isinstance(tags, list):
        words = [str(t).strip() for t in tags if str(t).strip()]
        if words:
            parts.append(", ".join(words))
    return ". ".join(parts) or None


def subtitle_text(raw: str) -> str:
    """Plain dialogue from SRT or WebVTT: no counters, timings, tags or repeated lines."""
    lines, last = [], None
    for line in raw.splitlines():
        line = line.strip().lstrip("\ufeff")
        if not line or line.isdigit() or line.upper().startswith("WEBVTT") or _TIMING.match(line):
            continue
        if line.startswith(("NOTE", "STYLE", "REGION")):
            continue
        line = _TAGS.sub("", line).strip()
        if line and line != last:
            lines.append(line)
            last = line
    return " ".join(lines)


_CUE_TIME = re.compile(
    r"(?:(\d{1,2}):)?(\d{1,2}):(\d{2})[.,](\d{3})\s*-->\s*(?:(\d{1,2}):)?(\d{1,2}):(\d{2})[.,](\d{3})"
)


@dataclass(frozen=True)
class Cue:
    """One subtitle line and when it is shown, in seconds."""

    start: float
    end: float
    text: str


def _seconds(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_cues(raw: str) -> list[Cue]:
    """The timed lines of an SRT or WebVTT file (tags removed, multi-line cues joined)."""
    cues: list[Cue] = []
    current: tuple[float, float] | None = None
    lines: list[str] = []

    def flush():
        if current is not None and lines:
            cues.append(Cue(current[0], current[1], " ".join(lines)))

    for line in raw.splitlines():
        line = line.strip().lstrip("\ufeff")
        match = _CUE_TIME.search(line)
        if match:
            flush()
            g = match.groups()
            current, lines = (_seconds(*g[:4]), _seconds(*g[4:])), []
        elif not line:
            flush()
            current, lines = None, []
        elif current is not None:
            text = _TAGS.sub("", line).strip()
            if text:
                lines.append(text)
    flush()
    return cues


def _embedded_subtitles(path: Path, info: ProbeInfo) -> str | None:
    """The first text subtitle stream as SRT (``None`` when there is none or ffmpeg fails)."""
    streams = [s for s in info.subtitles if s.codec in TEXT_SUBTITLE_CODECS]
    exe = shutil.which("ffmpeg")
    if not streams or exe is None:
        return None
    stream = streams[0]
    cmd = [exe, "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:{stream.index}", "-f", "srt", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=SUBTITLE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class Subtitles:
    """A file's subtitles as read: raw SRT/WebVTT text, and where it came from."""

    raw: str
    source: str  # subtitles (a sidecar file) | embedded-subtitles
    source_path: str | None = None


def find_subtitles(path: str | Path, info: ProbeInfo | None = None) -> Subtitles | None:
    """A same-named ``.srt``/``.vtt`` file, else the first embedded text subtitle stream; ``None``
    when the file has neither (or they hold no dialogue)."""
    path = Path(path)
    for file in _sidecars(path, (".srt", ".vtt")):
        raw = file.read_text(encoding="utf-8", errors="replace")
        if subtitle_text(raw):
            return Subtitles(raw, "subtitles", str(file))
    if info is not None and (raw := _embedded_subtitles(path, info)) and subtitle_text(raw):
        return Subtitles(raw, "embedded-subtitles", None)
    return None


def name_text(path: Path) -> str:
    """A readable phrase from a file name: ``red_sunset-clip.mp4`` -> ``red sunset clip``."""
    return " ".join(re.split(r"[\s_.\-]+", path.stem)).strip() or path.name


_UNREAD = object()


def find_text(path: str | Path, info: ProbeInfo | None = None, subtitles=_UNREAD) -> ItemText:
    """The item's text, from the first source that has some.

    Order: a same-named ``.json`` sidecar (title, description, tags), a ``.txt`` sidecar, an
    ``.srt``/``.vtt`` subtitle file, an embedded text subtitle stream, then the file name.
    ``subtitles``: what :func:`find_subtitles` returned, when the caller read them already.
    """
    path = Path(path)
    for file in _sidecars(path, (".json",)):
        if text := _from_json(file):
            return ItemText(text[:MAX_TEXT_CHARS], "sidecar-json", str(file))
    for file in _sidecars(path, (".txt",)):
        text = " ".join(file.read_text(encoding="utf-8", errors="replace").split())
        if text:
            return ItemText(text[:MAX_TEXT_CHARS], "sidecar-txt", str(file))
    if subtitles is _UNREAD:
        subtitles = find_subtitles(path, info)
    if subtitles is not None:
        return ItemText(subtitle_text(subtitles.raw)[:MAX_TEXT_CHARS], subtitles.source, subtitles.source_path)
    return ItemText(name_text(path), "filename", None)
