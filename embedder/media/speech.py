"""What is said in a file: a timestamped transcript of its audio track (speech recognition).

Two recognisers: Whisper (``speech_model`` names a registered Whisper model; the quality default
where its weights exist, see :mod:`embedder.encoders.whisper`) and PocketSphinx, which needs no
download. The offline recogniser is CMU PocketSphinx (the ``pocketsphinx`` wheel ships its US-English
acoustic model, dictionary and language model, so it runs with no download). It is rough: on the
NASA narration in ``tests/data`` it hears "... the webb space telescope in one of the largest clean
rooms in the war at nasa's goddard space flight center in greenbelt marrow", but the words a
search needs are there, with their times.

How a file is transcribed, and why:

1. FFmpeg decodes the first audio stream to 16 kHz mono 16-bit PCM (what the model was trained
   on), at most ``max_s`` seconds of it: a 10-hour file costs a bounded amount.
2. A voice-activity detector (PocketSphinx's WebRTC-style endpointer) keeps only the spans with
   speech: silence and music-only files cost the detector's pass, not a decode.
3. Each span is decoded; word times come from the decoder's segmentation (10 ms frames). Whisper
   instead takes the spans packed into chunks of at most 30 s, in batches, and its timestamp
   tokens give each segment's times (segments become lines; no per-word times).
4. PocketSphinx's words are grouped into lines (a pause of ``LINE_PAUSE_S`` or ``LINE_MAX_S`` of speech ends a
   line), the unit that search shows, highlights and plays from.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, field

from embedder.errors import MediaError, one_line

SAMPLE_RATE = 16000
LINE_PAUSE_S = 0.6  # a pause this long ends a transcript line
LINE_MAX_S = 8.0  # and so does this much speech without one
MIN_SPEECH_S = 0.5  # shorter bursts the detector keeps are clicks, not words
# Tokens the decoder emits that are not words: silence, sentence marks, fillers and noise.
_NOT_WORDS = {"<s>", "</s>", "<sil>", "[noise]", "[laugh]", "[breath]", "[cough]", "[um]", "[uh]"}


@dataclass(frozen=True)
class SpeechOptions:
    """How (and whether) a file's speech is transcribed (picklable: it goes to decode workers)."""

    model: str = "none"  # pocketsphinx | a registered Whisper model | none
    language: str = "en"
    max_s: float = 3 * 3600.0  # transcribe at most this much of a file's audio
    timeout_s: float = 600.0  # for FFmpeg's decode of that audio
    # Seconds of recognition per file: it runs inside the decode worker, whose whole budget is
    # decode_timeout_s, so a long talk is transcribed up to this and marked incomplete.
    budget_s: float = 150.0
    device: str = "cpu"  # where Whisper runs (auto: CUDA when there is one)
    weights_dir: str | None = None  # Whisper checkpoints saved as <weights_dir>/<model name>/
    batch: int = 8  # 30 s chunks per Whisper batch
    max_tokens: int = 220  # Whisper's text per 30 s chunk: about 150 words, more than fast speech has

    @property
    def enabled(self) -> bool:
        return self.model != "none"


@dataclass
class Word:
    text: str
    start: float  # seconds from the start of the file
    end: float


@dataclass
class Line:
    """One transcript line: a run of words without a long pause, and when it is said."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)

    def to_payload(self) -> dict:
        """What a point stores: times to the millisecond, the text, and each word's times."""
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "words": [[w.text, round(w.start, 3), round(w.end, 3)] for w in self.words],
        }


@dataclass
class Transcript:
    """A file's speech as lines, which model heard it, and how much audio it listened to."""

    model: str
    language: str
    lines: list[Line]
    speech_s: float  # seconds the voice detector kept
    heard_s: float  # seconds of audio read (``max_s`` caps it)
    complete_to: float  # the transcript covers the audio up to here (less than heard_s: out of time)

    def to_payload(self) -> dict:
        return {
            "model": self.model,
            "language": self.language,
            "speech_s": round(self.speech_s, 2),
            "heard_s": round(self.heard_s, 2),
            "complete_to": round(self.complete_to, 2),
            "lines": [line.to_payload() for line in self.lines],
        }

    def summary(self) -> dict:
        out = asdict(self)
        out["lines"] = [{"start": line.start, "end": line.end, "text": line.text} for line in self.lines]
        return out


def read_pcm(path: str, stream_index: int | None, options: SpeechOptions) -> bytes:
    """The file's audio as 16 kHz mono signed 16-bit PCM, at most ``options.max_s`` seconds.

    Raises:
        MediaError: stage "speech", when FFmpeg cannot decode the audio or runs out of time.
    """
    stream = f"0:{stream_index}" if stream_index is not None else "0:a:0"
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", stream, "-t", f"{options.max_s:.3f}"]
    command += ["-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=options.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise MediaError(path, "speech", f"decoding the audio took over {options.timeout_s:.0f} s") from None
    except OSError as exc:
        raise MediaError(path, "speech", f"cannot run ffmpeg: {one_line(exc)}") from None
    if done.returncode != 0 and not done.stdout:
        reason = one_line(done.stderr.decode("utf-8", "replace"), 200) or f"ffmpeg exited {done.returncode}"
        raise MediaError(path, "speech", f"cannot decode the audio: {reason}")
    return done.stdout[: len(done.stdout) // 2 * 2]


def speech_spans(pcm: bytes) -> list[tuple[float, float]]:
    """(start, end) seconds of the spans a voice-activity detector hears speech in."""
    from pocketsphinx import Endpointer

    ep = Endpointer(sample_rate=SAMPLE_RATE)
    frame = ep.frame_bytes
    spans: list[tuple[float, float]] = []
    start = None
    for offset in range(0, len(pcm) - frame + 1, frame):
        ep.process(pcm[offset : offset + frame])
        if ep.in_speech and start is None:
            start = ep.speech_start
        elif not ep.in_speech and start is not None:
            spans.append((start, ep.speech_end))
            start = None
    if start is not None:
        spans.append((start, len(pcm) / 2 / SAMPLE_RATE))
    return [(a, b) for a, b in spans if b - a >= MIN_SPEECH_S]


def _decoder():
    from pocketsphinx import Decoder, set_loglevel

    set_loglevel("FATAL")  # the decoder logs every parameter to stderr otherwise
    return Decoder(samprate=SAMPLE_RATE)


def recognise(pcm: bytes, spans: list[tuple[float, float]], budget_s: float = float("inf")) -> tuple[list[Word], float]:
    """The words said in each span, with times from the start of ``pcm``, and the second up to
    which the spans were decoded (the end of the last span, unless ``budget_s`` ran out first)."""
    import time

    decoder = _decoder()
    words: list[Word] = []
    deadline = time.monotonic() + budget_s
    done_to = spans[-1][1] if spans else 0.0
    for start, end in spans:
        if time.monotonic() > deadline:
            done_to = start
            break
        a = int(start * SAMPLE_RATE) * 2
        b = int(end * SAMPLE_RATE) * 2
        decoder.start_utt()
        decoder.process_raw(pcm[a:b], full_utt=True)
        decoder.end_utt()
        frame_rate = decoder.config["frate"] or 100
        for seg in decoder.seg():
            token = seg.word.split("(")[0]  # "the(2)" is the dictionary's second pronunciation of "the"
            if token.lower() in _NOT_WORDS or token.startswith("++"):
                continue
            words.append(Word(token, start + seg.start_frame / frame_rate, start + (seg.end_frame + 1) / frame_rate))
    return words, done_to


# Whisper models loaded in this process, by name: a decode worker keeps its model across files.
_WHISPER: dict[str, object] = {}


def whisper_chunks(spans: list[tuple[float, float]], chunk_s: float) -> list[tuple[float, float]]:
    """The voice detector's spans packed into chunks of at most ``chunk_s`` seconds, in order: a
    chunk takes the next span while the span still ends within it (the pause between them rides
    along, so Whisper hears the speech in context); a longer span is cut into pieces."""
    chunks: list[tuple[float, float]] = []
    for start, end in spans:
        if chunks and end - chunks[-1][0] <= chunk_s:
            chunks[-1] = (chunks[-1][0], end)
            continue
        while end - start > chunk_s:
            chunks.append((start, start + chunk_s))
            start += chunk_s
        chunks.append((start, end))
    return chunks


def recognise_whisper(pcm: bytes, spans: list[tuple[float, float]], options: SpeechOptions) -> tuple[list[Line], float]:
    """Whisper's lines for the speech in ``pcm`` (times from its start) and the second up to which
    it was transcribed (less than the last span's end when ``options.budget_s`` ran out)."""
    import time

    import numpy as np

    from embedder.encoders import whisper
    from embedder.encoders.registry import get_spec

    loaded = _WHISPER.get(options.model)
    if loaded is None:
        spec = get_spec(options.model)
        loaded = _WHISPER[options.model] = whisper.load_whisper(spec, options.device, options.weights_dir)
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    chunks = whisper_chunks(spans, whisper.CHUNK_S)
    lines: list[Line] = []
    deadline = time.monotonic() + options.budget_s
    done_to = chunks[-1][1] if chunks else 0.0
    for first in range(0, len(chunks), options.batch):
        if time.monotonic() > deadline:
            done_to = chunks[first][0]
            break
        batch = chunks[first : first + options.batch]
        audio = [samples[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] for a, b in batch]
        for (offset, _), segments in zip(
            batch, whisper.transcribe_chunks(loaded, audio, options.language, options.max_tokens)
        ):
            lines += [Line(offset + a, offset + b, text) for a, b, text in segments]
    return lines, done_to


def lines_of(words: list[Word]) -> list[Line]:
    """Words grouped into lines: a pause of ``LINE_PAUSE_S`` or ``LINE_MAX_S`` of speech ends one."""
    lines: list[Line] = []
    current: list[Word] = []
    for word in words:
        if current and (word.start - current[-1].end >= LINE_PAUSE_S or word.end - current[0].start > LINE_MAX_S):
            lines.append(Line(current[0].start, current[-1].end, " ".join(w.text for w in current), current))
            current = []
        current.append(word)
    if current:
        lines.append(Line(current[0].start, current[-1].end, " ".join(w.text for w in current), current))
    return lines


def transcribe(path: str, stream_index: int | None, options: SpeechOptions) -> Transcript:
    """A file's transcript (lines with word times) by ``options.model``.

    Raises:
        MediaError: stage "speech", naming the reason (the audio cannot be decoded, or the
        recogniser failed).
    """
    from embedder.errors import WeightsUnavailableError

    pcm = read_pcm(path, stream_index, options)
    heard = len(pcm) / 2 / SAMPLE_RATE
    try:
        spans = speech_spans(pcm)
        if options.model == "pocketsphinx":
            words, done_to = recognise(pcm, spans, options.budget_s)
            lines = lines_of(words)
        else:
            lines, done_to = recognise_whisper(pcm, spans, options)
    except WeightsUnavailableError as exc:
        raise MediaError(path, "speech", str(exc)) from None
    except Exception as exc:  # the recogniser's own errors carry no file name
        raise MediaError(path, "speech", f"{options.model}: {one_line(exc, 200)}") from None
    complete_to = heard if done_to >= (spans[-1][1] if spans else 0.0) else done_to
    return Transcript(options.model, options.language, lines, sum(b - a for a, b in spans), heard, complete_to)


TRANSCRIPT_FORMATS = ("json", "vtt", "srt", "text")


def _clock(seconds: float, mark: str) -> str:
    millis = int(round(max(seconds, 0.0) * 1000))
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{mark}{ms:03d}"


def format_transcript(stored: dict, fmt: str) -> str:
    """A stored transcript (payload ``transcript``) as WebVTT, SubRip, plain text or JSON.

    Raises:
        ValueError: an unknown format.
    """
    import json

    lines = stored.get("lines") or []
    if fmt == "json":
        return json.dumps(stored, ensure_ascii=False, indent=2)
    if fmt == "text":
        return "\n".join(line["text"] for line in lines)
    if fmt == "vtt":
        cues = [f"{_clock(x['start'], '.')} --> {_clock(x['end'], '.')}\n{x['text']}" for x in lines]
        return "WEBVTT\n\n" + "\n\n".join(cues) + ("\n" if cues else "")
    if fmt == "srt":
        cues = [
            f"{i}\n{_clock(x['start'], ',')} --> {_clock(x['end'], ',')}\n{x['text']}" for i, x in enumerate(lines, 1)
        ]
        return "\n\n".join(cues) + ("\n" if cues else "")
    raise ValueError(f"format must be one of {', '.join(TRANSCRIPT_FORMATS)}, not '{fmt}'")


__all__ = [
    "TRANSCRIPT_FORMATS",
    "format_transcript",
    "Line",
    "SpeechOptions",
    "Transcript",
    "Word",
    "transcribe",
]
