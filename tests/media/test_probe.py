import pytest

from embedder.errors import MediaError
from embedder.media.probe import Limits, check_limits, probe


def test_probe_reads_every_stream_of_a_real_multi_stream_file(real_media):
    info = probe(real_media / "nasa_13013.mp4")
    assert info.kind == "video"
    assert [(v.index, v.width, v.height) for v in info.video] == [(0, 320, 180), (3, 480, 270)]
    assert info.best_video.index == 3
    assert info.best_video.fps == pytest.approx(29.97, abs=0.01)
    assert [(a.index, a.sample_rate, a.channels) for a in info.audio] == [(1, 8000, 2), (4, 16000, 2)]
    assert [s.codec for s in info.subtitles] == ["mov_text", "mov_text"]
    assert info.duration == pytest.approx(16.57, abs=0.01)


def test_probe_facts_for_generated_cases(media):
    ten_bit = probe(media["h264_10bit.mp4"]).best_video
    assert (ten_bit.codec, ten_bit.bit_depth) == ("h264", 10)
    assert probe(media["vfr.mp4"]).best_video.variable_frame_rate
    assert not probe(media["h264.mp4"]).best_video.variable_frame_rate
    audio_only = probe(media["tone.m4a"])
    assert audio_only.kind == "audio" and audio_only.best_video is None
    assert audio_only.duration == pytest.approx(12.5, abs=0.05)
    assert probe(media["video_only.mp4"]).audio == []
    assert probe(media["av1.mkv"]).best_video.codec == "av1"
    assert probe(media["multistream.mkv"]).best_video.width == 128


@pytest.mark.parametrize("name", ["zero.mp4", "truncated.mp4", "fake.mp4"])
def test_unreadable_files_fail_at_probe(media, name):
    with pytest.raises(MediaError) as err:
        probe(media[name])
    assert err.value.stage == "probe"
    assert err.value.path == str(media[name])
    assert str(media[name]) not in err.value.reason  # the record names the file once


def test_limits_refuse_before_decoding(media):
    info = probe(media["h264.mp4"])
    check_limits(info, Limits())
    with pytest.raises(MediaError, match=r"resolution 96x64 is over the 80x4320 limit"):
        check_limits(info, Limits(max_width=80))
    with pytest.raises(MediaError, match=r"duration 3s is over the 2s limit"):
        check_limits(info, Limits(max_duration_s=2))
    with pytest.raises(MediaError, match=r"over the 0.01 MB limit"):
        check_limits(info, Limits(max_file_mb=0.01))


def _facts(info):
    """What decoding and the payload read from a probe."""
    v, a = info.best_video, info.best_audio
    return {
        "kind": info.kind,
        "duration": round(info.duration, 3),
        "size": info.size,
        "video": None if v is None else (v.index, v.codec, v.width, v.height, round(v.fps, 3), v.frames, v.bit_depth),
        "audio": None if a is None else (a.index, a.codec, a.sample_rate, a.channels),
        "streams": (len(info.video), len(info.audio), len(info.subtitles)),
    }


def test_header_probe_agrees_with_ffprobe_and_leaves_the_rest_to_it(media, real_media, tmp_path):
    from tests.conftest import ffmpeg

    cover = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=green:size=64x64", "-frames:v", "1", str(cover))
    with_art = tmp_path / "with_art.mp3"
    ffmpeg(
        "-i",
        str(media["tone.mp3"]),
        "-i",
        str(cover),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-disposition:v",
        "attached_pic",
        str(with_art),
    )
    cases = {
        **{n: p for n, p in media.items() if n not in ("zero.mp4", "truncated.mp4", "fake.mp4")},
        "nasa_13013.mp4": real_media / "nasa_13013.mp4",
        "with_art.mp3": with_art,
    }
    readers = {}
    for name, path in cases.items():
        fast, exact = probe(path, exact=False), probe(path)
        readers[name] = fast.reader
        assert exact.reader == "ffprobe"
        assert _facts(fast) == _facts(exact), name
        if fast.reader == "header" and fast.best_video and fast.best_video.variable_frame_rate is not None:
            assert fast.best_video.variable_frame_rate == exact.best_video.variable_frame_rate, name
    # several streams of a kind, subtitles, cover art: only ffprobe reads dispositions and languages
    assert {n for n, r in readers.items() if r == "ffprobe"} == {"multistream.mkv", "nasa_13013.mp4", "with_art.mp3"}
    assert probe(media["vfr.mp4"], exact=False).best_video.variable_frame_rate is True
    assert probe(with_art, exact=False).kind == "audio"


@pytest.mark.parametrize("name", ["zero.mp4", "truncated.mp4", "fake.mp4"])
def test_header_probe_failures_are_ffprobes(media, name):
    with pytest.raises(MediaError) as fast:
        probe(media[name], exact=False)
    with pytest.raises(MediaError) as exact:
        probe(media[name])
    assert (fast.value.stage, fast.value.reason) == (exact.value.stage, exact.value.reason)
