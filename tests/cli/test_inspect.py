"""`embedder inspect` end to end: the real CLI process over every generated case."""

import json
import os
import subprocess
import sys

import pytest


def run_cli(*args, env=None, check=True):
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "embedder.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def reports(media):
    folder = next(iter(media.values())).parent
    proc = run_cli("--models", "tiny", "inspect", folder, "--json", "--max-frames", "4")
    return {os.path.basename(r["path"]): r for r in json.loads(proc.stdout)}


def test_every_case_has_the_right_status(reports):
    failed = {k: (r["stage"], r["reason"]) for k, r in reports.items() if r["status"] == "failed"}
    skipped = {k: r["reason"] for k, r in reports.items() if r["status"] == "skipped"}
    assert skipped == {"zero.mp4": "empty file", "fake.mp4": "not audio or video (content: text)"}
    assert set(failed) == {"truncated.mp4", "truncated_faststart.mp4"}
    assert failed["truncated.mp4"] == ("probe", "Invalid data found when processing input")
    assert failed["truncated_faststart.mp4"][0] == "decode"
    assert len(reports) == 19


@pytest.mark.parametrize(
    "name, kind, decoder, frames, windows",
    [
        ("h264.mp4", "video", "decord", 3, 1),
        ("hevc.mp4", "video", "decord", 2, 0),
        ("av1.mkv", "video", "torchcodec", 1, 0),
        ("vp9.webm", "video", "decord", 2, 1),
        ("h264_10bit.mp4", "video", "decord", 2, 0),
        ("long.mp4", "video", "decord", 4, 0),
        ("multistream.mkv", "video", "decord", 2, 1),
        ("video_only.mp4", "video", "decord", 2, 0),
        ("tone.mp3", "audio", None, 0, 2),
        ("tone.m4a", "audio", None, 0, 2),
    ],
)
def test_inspect_reports_decoder_frames_and_windows(reports, name, kind, decoder, frames, windows):
    r = reports[name]
    assert r["status"] == "ok" and r["kind"] == kind
    assert (r["video"] or {}).get("decoder") == decoder
    assert (r["video"] or {}).get("frames", 0) == frames
    assert len((r["video"] or {}).get("timestamps", [])) == frames
    assert (r["audio"] or {}).get("windows", 0) == windows
    assert r["text"]["source"] == "filename"
    assert len(r["sha256"]) == 64


def test_inspect_details(reports):
    assert reports["long.mp4"]["video"]["timestamps"] == pytest.approx([2.6, 7.6, 12.6, 17.6], abs=0.21)
    assert reports["av1.mkv"]["video"]["fallback_reason"].startswith("decord:")
    assert reports["multistream.mkv"]["probe"]["best_video_index"] == 1
    assert reports["multistream.mkv"]["video"]["frame_size"] == [85, 64]  # tiny CLIP takes 64 px
    assert reports["vfr.mp4"]["probe"]["video"][0]["variable_frame_rate"] is True
    assert reports["h264_10bit.mp4"]["probe"]["video"][0]["bit_depth"] == 10
    assert reports["tone.mp3"]["modalities"] == ["audio", "text"]
    assert reports["video_only.mp4"]["modalities"] == ["visual", "text"]


def test_symlink_loop_is_reported_not_followed(tmp_path, media):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.mp4").write_bytes(media["h264.mp4"].read_bytes())
    (tmp_path / "lib" / "loop").symlink_to(tmp_path / "lib")
    proc = run_cli("--models", "tiny", "inspect", tmp_path / "lib", "--json")
    got = {os.path.basename(r["path"]): r for r in json.loads(proc.stdout)}
    assert got["a.mp4"]["status"] == "ok"
    assert got["loop"]["reason"] == "symlink loop or folder already walked"


def test_human_output_and_real_file(real_media):
    proc = run_cli("--models", "tiny", "inspect", real_media / "nasa_13013.mp4")
    assert "*video #3: h264 480x270 @ 29.970 fps" in proc.stdout
    # The item's own 2 windows, and one more for a 2 s shot that no window lies mostly inside.
    assert "audio windows: 2 (+1 added for segments)" in proc.stdout
    assert "segments: 4 (0:00.0-0:05.0, 0:05.0-0:06.0, 0:06.0-0:08.0, 0:08.0-0:13.0)" in proc.stdout
    assert "text (embedded-subtitles): NAR: This is the optical" in proc.stdout
    assert proc.stdout.strip().endswith("1 ok, 0 failed, 0 skipped")


def test_bad_setting_is_one_line_naming_it(media):
    proc = run_cli("inspect", media["h264.mp4"], env={"EMBEDDER_MAX_FRAMES": "lots"}, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: invalid setting 'max_frames' (EMBEDDER_MAX_FRAMES): Input should be a valid integer, "
        "unable to parse string as an integer"
    ]
    assert "Traceback" not in proc.stderr
