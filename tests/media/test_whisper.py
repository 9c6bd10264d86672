"""Whisper through transformers (a random-weight tiny config: its words mean nothing, but every line
of loading, batching, generating with timestamps and storing runs), and the parsing of its
timestamp tokens, checked on token sequences written by hand."""

from __future__ import annotations

import pytest

from embedder.encoders.registry import check_speech_model, get_spec, speech_models
from embedder.encoders.whisper import TIME_STEP_S, load_whisper, segments_of, transcribe_chunks
from embedder.errors import SettingsError
from embedder.media.speech import SpeechOptions, transcribe, whisper_chunks
from tests.conftest import SHIPPED_MEDIA

SPOKEN = str(SHIPPED_MEDIA / "nasa_13013.mp4.audio.mp3")


@pytest.fixture(scope="module")
def tiny():
    return load_whisper(get_spec("tiny-whisper"), "cpu")


def _time(loaded, seconds: float) -> int:
    return loaded.timestamp_begin + round(seconds / TIME_STEP_S)


def _text(loaded, text: str) -> list[int]:
    return loaded.tokenizer.encode(text, add_special_tokens=False)


def test_timestamp_tokens_become_timed_segments(tiny):
    t, w = lambda s: _time(tiny, s), lambda x: _text(tiny, x)
    prompt = [tiny.eot + 1, tiny.eot + 2, tiny.eot + 3]  # <|startoftranscript|><|en|><|transcribe|>
    tokens = [*prompt, t(0.0), *w(" hello world"), t(1.5), t(1.5), *w(" again"), t(2.24), tiny.eot]
    assert segments_of(tokens, tiny, 10.0) == [(0.0, 1.5, "hello world"), (1.5, 2.24, "again")]
    # a segment the model leaves open ends at the chunk's end; text before any time starts at 0
    assert segments_of([*w("said"), t(3.0), t(3.0), *w(" cut off")], tiny, 7.25) == [
        (0.0, 3.0, "said"),
        (3.0, 7.25, "cut off"),
    ]
    # times past the chunk (random weights, or padding) are clamped to it; empty segments vanish
    assert segments_of([t(5.0), *w("late"), t(29.0), t(29.0), t(30.0)], tiny, 6.0) == [(5.0, 6.0, "late")]


def test_speech_spans_pack_into_whisper_windows():
    # near spans share a window (the pause rides along); a long one is cut; the next starts anew
    spans = [(0.0, 5.0), (6.0, 10.0), (40.0, 100.0), (101.0, 102.0), (103.0, 120.0)]
    assert whisper_chunks(spans, 30.0) == [(0.0, 10.0), (40.0, 70.0), (70.0, 100.0), (101.0, 120.0)]
    assert whisper_chunks([], 30.0) == []


def test_a_file_is_transcribed_in_batches_with_times_inside_its_speech(tiny):
    transcript = transcribe(SPOKEN, None, SpeechOptions(model="tiny-whisper", batch=2))
    assert transcript.model == "tiny-whisper" and transcript.complete_to == transcript.heard_s
    assert 8.0 < transcript.speech_s <= transcript.heard_s == pytest.approx(13.2, abs=0.3)
    assert transcript.lines, "random weights still write tokens"
    for line in transcript.lines:
        assert 0.0 <= line.start <= line.end <= transcript.heard_s + 1e-6 and line.text.strip() == line.text != ""
    assert all(a.start <= b.start for a, b in zip(transcript.lines, transcript.lines[1:]))
    # one batch of two 5 s chunks gives each chunk its own segments, in its own time
    import numpy as np

    quiet = np.zeros(16000 * 5, np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * 5) / 16000)).astype(np.float32)
    both = transcribe_chunks(tiny, [quiet, tone], "en", max_new_tokens=12)
    assert len(both) == 2 and all(0 <= a <= b <= 5.0 for segments in both for a, b, _ in segments)
    assert both[0] == transcribe_chunks(tiny, [quiet], "en", max_new_tokens=12)[0]  # batching changes nothing


def test_an_unknown_language_or_model_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="knows no language 'de'"):
        transcribe_chunks(tiny, [], "de")
    assert {"pocketsphinx", "none", "tiny-whisper", "whisper-large-v3-turbo"} <= set(speech_models())
    assert check_speech_model("whisper-small") == "whisper-small"
    with pytest.raises(SettingsError, match="unknown model 'whisper-huge'.*pocketsphinx"):
        check_speech_model("whisper-huge")


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    from embedder.errors import WeightsUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError, match=r"openai/whisper-small .*whisper-small"):
        load_whisper(get_spec("whisper-small"), "cpu", tmp_path / "weights")


def test_ingest_stores_whispers_transcript_and_a_change_of_recogniser_is_stale(tmp_path):
    import shutil

    from embedder import Library
    from embedder.engine.reembed import find_stale
    from embedder.settings import load_settings

    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(SPOKEN, folder / "talk.mp3")
    settings = load_settings(
        store=str(tmp_path / "store"), models="tiny", device="cpu", workers=1, speech_model="tiny-whisper"
    )
    with Library.open(settings) as lib:
        assert not lib.ingest([str(folder)]).failed
        (record,) = list(lib.media.scroll())
        stored = record.payload["transcript"]
        direct = transcribe(str(folder / "talk.mp3"), None, SpeechOptions(model="tiny-whisper")).to_payload()
        assert record.payload["speech_model"] == stored["model"] == "tiny-whisper"
        assert stored["lines"] == direct["lines"] and stored["lines"]  # what the worker heard, stored whole
        assert find_stale(lib.media, settings).stale == []
        other = settings.model_copy(update={"speech_model": "pocketsphinx"})
        assert [s.causes for s in find_stale(lib.media, other).stale] == [["speech"]]
    with pytest.raises(SettingsError, match="unknown model 'whisper-huge'"):
        Library.open(settings.model_copy(update={"speech_model": "whisper-huge"})).ingest([str(folder)])


def test_an_ingest_with_unavailable_whisper_weights_stops_before_reading_a_file(tmp_path, monkeypatch):
    from embedder import Library
    from embedder.errors import WeightsUnavailableError
    from embedder.settings import load_settings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    settings = load_settings(
        store=str(tmp_path / "store"), models="tiny", device="cpu", workers=1, speech_model="whisper-small"
    )
    (tmp_path / "media").mkdir()
    with Library.open(settings) as lib:
        with pytest.raises(WeightsUnavailableError, match="save the checkpoint to .*whisper-small"):
            lib.ingest([str(tmp_path / "media")])
