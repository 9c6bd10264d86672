import numpy as np
import pytest

from embedder.errors import MediaError
from embedder.media.probe import probe
from embedder.media.video import SamplingOptions, sample_frames, target_size, uniform_timestamps


def sample(path, **kw):
    kw.setdefault("image_size", 40)  # 96x64 sources become 60x40
    return sample_frames(str(path), probe(path), SamplingOptions(**kw))


def test_uniform_timestamps_and_cap():
    assert uniform_timestamps(3.0, 1.0, 32) == [0.5, 1.5, 2.5]
    assert uniform_timestamps(20.0, 1.0, 4) == [2.5, 7.5, 12.5, 17.5]
    assert uniform_timestamps(0.0, 1.0, 4) == [0.0]
    assert uniform_timestamps(0.4, 1.0, 4) == [0.5]  # shorter than one interval: still one frame


def test_target_size_keeps_aspect_with_short_side_at_encoder_size():
    assert target_size(1920, 1080, 224) == (224, 398)
    assert target_size(1080, 1920, 224) == (398, 224)


@pytest.mark.parametrize("name", ["h264.mp4", "hevc.mp4", "vp9.webm", "h264_10bit.mp4", "video_only.mp4"])
def test_decord_reads_common_codecs(media, name):
    got = sample(media[name])
    n = 3 if name == "h264.mp4" else 2
    assert got.decoder == "decord" and got.fallback_reason is None
    assert got.frames.shape == (n, 40, 60, 3) and got.frames.dtype == np.uint8
    assert got.timestamps == pytest.approx([0.5 + i for i in range(n)], abs=0.051)
    assert got.frames.std() > 10  # a real test pattern, not a blank buffer


def test_av1_falls_back_to_torchcodec_with_the_reason(media):
    got = sample(media["av1.mkv"], fps=4)
    assert got.decoder == "torchcodec"
    assert got.fallback_reason.startswith("decord: ")
    assert got.frames.shape == (4, 40, 60, 3)
    assert got.timestamps == pytest.approx([0.1, 0.3, 0.6, 0.8], abs=0.051)


def test_long_video_is_capped_and_spread(media):
    got = sample(media["long.mp4"], max_frames=5)
    assert got.frames.shape[0] == 5
    assert got.timestamps == pytest.approx([2.0, 6.0, 10.0, 14.0, 18.0], abs=0.21)


def test_vfr_timestamps_are_real_frame_times_from_both_decoders(media):
    got = sample(media["vfr.mp4"], fps=4, max_frames=4)  # 12.8 s: spread to 4 frames
    # Frames are 0.05 s apart for 0.5 s, then 0.25 s apart: requested 1.6, 4.8, 8.0, 11.2.
    assert got.timestamps == pytest.approx([1.5, 4.75, 8.0, 11.0], abs=1e-3)
    from embedder.media.video import _TorchcodecDecoder

    stream = probe(media["vfr.mp4"]).best_video
    frames, stamps = _TorchcodecDecoder(str(media["vfr.mp4"]), stream, (32, 48)).frames_at([0.12, 0.37, 0.62])
    assert stamps == pytest.approx([0.10, 0.35, 0.50], abs=1e-3)


def test_multi_stream_file_uses_the_largest_stream(media):
    got = sample(media["multistream.mkv"])
    assert got.stream_index == 1
    assert got.timestamps == pytest.approx([0.4667, 1.4667], abs=1e-3)  # 15 fps stream, not 10 fps


def test_scene_mode_finds_the_cut(media):
    got = sample(media["scene.mp4"], mode="scene")
    assert len(got.timestamps) == 2
    assert got.timestamps[0] < 0.2 and 1.0 <= got.timestamps[1] <= 1.2
    red, blue = got.frames[0].reshape(-1, 3).mean(0), got.frames[1].reshape(-1, 3).mean(0)
    assert red[0] > 200 and red[2] < 50 and blue[2] > 200 and blue[0] < 50


def test_audio_only_has_no_frames(media):
    assert sample(media["tone.mp3"]) is None


def test_truncated_file_is_a_decode_error(media):
    with pytest.raises(MediaError) as err:
        sample(media["truncated_faststart.mp4"])
    assert err.value.stage == "decode"
    assert "decord:" in err.value.reason and "torchcodec:" in err.value.reason


@pytest.mark.parametrize("name", ["h264.mp4", "av1.mkv"])  # decord, and torchcodec (its fallback)
def test_decoder_threads_leave_the_frames_unchanged(media, name):
    one = sample(media[name], decoder_threads=1)
    many = sample(media[name], decoder_threads=4)
    assert one.decoder == many.decoder and one.timestamps == many.timestamps
    assert np.array_equal(one.frames, many.frames)


def test_decoder_processes_share_the_cores():
    import os

    from embedder.media.decode import DecodeOptions
    from embedder.settings import load_settings

    cores = os.cpu_count() or 1
    alone = DecodeOptions.from_settings(load_settings(workers=1), 224).sampling.decoder_threads
    crowded = DecodeOptions.from_settings(load_settings(workers=64), 224).sampling.decoder_threads
    assert alone == cores and crowded == 1


def test_the_gpu_decoder_falls_back_to_the_cpu_decoders_with_the_reason(media):
    import torch

    cpu = sample(media["h264.mp4"])
    tried = sample(media["h264.mp4"], gpu_decode=True)
    if torch.cuda.is_available():  # NVDEC: the same pictures within resize and colour rounding
        assert tried.decoder == "torchcodec-cuda", tried.fallback_reason
        assert tried.frames.shape == cpu.frames.shape
        assert np.abs(tried.frames.astype(int) - cpu.frames.astype(int)).mean() < 8
    else:  # the CPU decoders take over, and say why
        assert tried.decoder == "decord" and tried.fallback_reason == "torchcodec-cuda: no CUDA device"
        assert np.array_equal(tried.frames, cpu.frames) and tried.timestamps == cpu.timestamps


def test_the_video_decoder_setting_chooses_where_decoding_runs():
    from embedder.media.decode import gpu_decode
    from embedder.settings import Settings

    assert gpu_decode(Settings(video_decoder="cuda", device="cpu")) is True
    assert gpu_decode(Settings(video_decoder="cpu", device="cuda")) is False
    assert gpu_decode(Settings(device="cpu")) is False  # auto follows the encoders
    assert gpu_decode(Settings(device="cuda:1")) is True
