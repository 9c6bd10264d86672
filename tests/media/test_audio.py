import numpy as np
import pytest

from embedder.media.audio import WindowOptions, load_windows, window_starts
from embedder.media.probe import probe


def windows(path, **kw):
    return load_windows(str(path), probe(path), WindowOptions(**kw))


def test_window_starts_rules():
    assert window_starts(25.0, WindowOptions()) == [0.0, 10.0, 20.0]
    assert window_starts(20.5, WindowOptions()) == [0.0, 10.0]  # 0.5 s tail is under 1 s
    assert window_starts(20.5, WindowOptions(min_last_window_s=0.2)) == [0.0, 10.0, 20.0]
    assert window_starts(3.0, WindowOptions()) == [0.0]  # a short file is one partial window
    assert window_starts(100.0, WindowOptions(max_windows=3)) == [0.0, 40.0, 90.0]


@pytest.mark.parametrize("name", ["tone.mp3", "tone.wav", "tone.flac", "tone.ogg", "tone.m4a"])
def test_audio_only_formats_give_mono_48k_windows(media, name):
    got = windows(media[name])
    assert got.sample_rate == 48_000 and got.source_rate == 44_100
    assert got.starts == [0.0, 10.0]
    assert got.durations[0] == pytest.approx(10.0, abs=1e-3)
    assert got.durations[1] == pytest.approx(2.5, abs=0.06)  # codec padding varies a little
    first = got.windows[0]
    assert first.ndim == 1 and first.dtype == np.float32
    # The 440 Hz sine survives decoding, downmixing and resampling.
    spectrum = np.abs(np.fft.rfft(first[:48_000]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)


def test_window_length_is_configurable(media):
    got = windows(media["tone.wav"], window_s=5.0)
    assert got.starts == [0.0, 5.0, 10.0]
    assert got.durations == pytest.approx([5.0, 5.0, 2.5], abs=1e-3)


def test_video_without_audio_is_not_an_error(media):
    assert windows(media["video_only.mp4"]) is None
    assert windows(media["hevc.mp4"]) is None


def test_real_mp3_and_video_soundtrack(real_media):
    mp3 = windows(real_media / "nasa_13013.mp4.audio.mp3")
    assert (mp3.source_rate, len(mp3.windows)) == (8000, 2)
    video = windows(real_media / "nasa_13013.mp4")
    assert video.stream_index == 4 and video.source_rate == 16000
