import json

from embedder.media.probe import probe
from embedder.media.text import find_text, subtitle_text


def test_sidecar_json_wins_then_txt_then_subtitles_then_name(tmp_path):
    video = tmp_path / "my_holiday-clip.mp4"
    video.write_bytes(b"")
    assert find_text(video).text == "my holiday clip"
    assert find_text(video).source == "filename"
    (tmp_path / "my_holiday-clip.srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\n<i>Hello</i> there\n\n"
        "2\n00:00:03,000 --> 00:00:04,000\nHello there\nGeneral\n"
    )
    got = find_text(video)
    assert (got.text, got.source) == ("Hello there General", "subtitles")
    (tmp_path / "my_holiday-clip.txt").write_text("  A day at\nthe beach ")
    assert find_text(video).text == "A day at the beach"
    (tmp_path / "my_holiday-clip.json").write_text(
        json.dumps({"title": "Beach", "description": "Waves", "tags": ["sea", "sun"]})
    )
    got = find_text(video)
    assert (got.text, got.source) == ("Beach. Waves. sea, sun", "sidecar-json")


def test_webvtt_is_parsed():
    raw = "WEBVTT\n\nNOTE a comment\n\n00:00.000 --> 00:01.000\nFirst line\n\n00:01.000 --> 00:02.000\nSecond\n"
    assert subtitle_text(raw) == "First line Second"


def test_embedded_subtitle_stream(real_media):
    path = real_media / "nasa_13013.mp4"
    got = find_text(path, probe(path))
    assert got.source == "embedded-subtitles"
    assert got.text.startswith("NAR: This is the optical and science segment of the Webb space telescope")
