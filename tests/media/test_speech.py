"""Speech recognition on real speech (the NASA narration shipped in tests/data), with the offline
model that ships inside its package (pocketsphinx), and what bad audio gives."""

from __future__ import annotations

import pytest

from embedder.errors import MediaError
from embedder.media.decode import DecodeOptions, decode_item
from embedder.media.speech import SpeechOptions, format_transcript, transcribe
from tests.conftest import ffmpeg

ON = SpeechOptions(model="pocketsphinx")


@pytest.fixture(scope="module")
def narration(tmp_path_factory):
    """The NASA narration's audio track (no subtitles beside it), and its transcript."""
    from tests.conftest import SHIPPED_MEDIA

    path = str(SHIPPED_MEDIA / "nasa_13013.mp4.audio.mp3")
    return path, transcribe(path, None, ON)


def test_real_speech_is_transcribed_with_word_times(narration):
    _, transcript = narration
    text = " ".join(line.text for line in transcript.lines)
    # The narrator: "... in one of the largest cleanrooms in the world at NASA's Goddard Space Flight
    # Center in Greenbelt, Maryland" (this 8 kHz track loses "Webb space telescope" to the model)
    assert "largest" in text and "goddard space flight center" in text
    words = [w for line in transcript.lines for w in line.words]
    goddard = next(w for w in words if w.text == "goddard")
    # said at about 9 s: after the telescope sentence, before the end of the 13 s clip
    assert 7.0 < goddard.start < goddard.end < 11.5
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))  # in time order
    assert transcript.heard_s == pytest.approx(13.2, abs=0.3) and 8.0 < transcript.speech_s <= transcript.heard_s
    assert transcript.complete_to == transcript.heard_s
    for line in transcript.lines:  # a line is its words, from its first word's start to its last's end
        assert line.text == " ".join(w.text for w in line.words)
        assert line.start == line.words[0].start and line.end == line.words[-1].end


def test_transcript_formats(narration):
    _, transcript = narration
    stored = transcript.to_payload()
    vtt = format_transcript(stored, "vtt")
    assert vtt.startswith("WEBVTT\n\n")
    first = transcript.lines[0]
    h_m_s = f"00:00:{int(first.start):02d}.{round((first.start % 1) * 1000):03d}"
    assert h_m_s in vtt.splitlines()[2] and first.text == vtt.splitlines()[3]
    srt = format_transcript(stored, "srt").split("\n\n")
    assert len(srt) == len(transcript.lines) and srt[0].startswith("1\n00:00:") and "," in srt[0].splitlines()[1]
    assert format_transcript(stored, "text").splitlines() == [line.text for line in transcript.lines]
    with pytest.raises(ValueError, match="format must be one of"):
        format_transcript(stored, "docx")


def test_silence_costs_little_and_has_no_lines(tmp_path):
    silence = tmp_path / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "20", str(silence))
    transcript = transcribe(str(silence), None, ON)
    assert transcript.lines == [] and transcript.speech_s == 0.0 and transcript.heard_s == pytest.approx(20, abs=0.1)


def test_long_audio_is_capped_and_a_short_budget_is_reported(tmp_path, narration):
    path, _ = narration
    capped = transcribe(path, None, SpeechOptions(model="pocketsphinx", max_s=5.0))
    assert capped.heard_s == pytest.approx(5.0, abs=0.05)
    assert all(line.end <= 5.0 + 0.05 for line in capped.lines)
    rushed = transcribe(path, None, SpeechOptions(model="pocketsphinx", budget_s=0.0))
    assert rushed.lines == [] and rushed.complete_to < rushed.heard_s


def test_noise_and_a_broken_track_give_a_record_not_a_crash(tmp_path, media):
    noise = tmp_path / "noise.wav"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=a=0.5:d=6", str(noise))
    transcript = transcribe(str(noise), None, ON)  # whatever it hears, it returns
    assert transcript.heard_s == pytest.approx(6, abs=0.1)
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(b"ID3" + b"\x00" * 4000)
    with pytest.raises(MediaError) as caught:
        transcribe(str(fake), None, ON)
    assert caught.value.stage == "speech" and str(fake) in str(caught.value)
    # Through the decoder, a transcript that fails is a warning on a file that is still stored.
    options = DecodeOptions(speech=ON, thumbnail=False)
    item = decode_item(str(media["h264.mp4"]), options)
    assert item.transcript is not None and item.audio is not None  # a sine tone: decoded, whatever is heard
    silent = decode_item(str(media["video_only.mp4"]), options)
    assert silent.transcript is None  # no sound, nothing to transcribe


def test_speech_settings_are_checked():
    from embedder.settings import load_settings

    with pytest.raises(Exception, match="US-English"):
        load_settings(speech_model="pocketsphinx", speech_language="de")
    assert load_settings(speech_model="none", speech_language="de").speech_model == "none"
