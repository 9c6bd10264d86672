import io

import numpy as np
from PIL import Image

from embedder.media.probe import probe
from embedder.media.thumbnail import THUMBNAIL_WIDTH, representative_index, video_thumbnail


def _picture(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.float32)


def test_the_preview_is_the_most_detailed_sample_never_a_black_intro(media):
    stream = probe(media["h264.mp4"]).best_video  # 96x64: a 3:2 picture
    black = np.zeros((224, 336, 3), np.uint8)
    flat_grey = np.full((224, 336, 3), 128, np.uint8)
    stripes = np.zeros((224, 336, 3), np.uint8)
    stripes[::8] = (255, 0, 0)  # red lines: the only sample with detail
    frames = np.stack([black, flat_grey, stripes])
    assert representative_index(frames) == 2

    # Samples wider than the preview are scaled down, not decoded again: the preview is the
    # striped sample even though the file itself shows something else.
    preview = _picture(video_thumbnail(str(media["h264.mp4"]), stream, "decord", frames, [0.0, 1.0, 2.0]))
    assert preview.shape == (212, THUMBNAIL_WIDTH, 3)  # 320 wide, 3:2, rounded down to even
    red, green = preview[..., 0].mean(), preview[..., 1].mean()
    assert 20 < red < 80 and green < 15  # one line in 8 is red, the rest black


def test_small_samples_are_decoded_again_at_preview_size(media):
    stream = probe(media["h264.mp4"]).best_video
    tiny = np.zeros((32, 48, 3), np.uint8)  # the tiny models' input size: far below the preview
    tiny[:, :24] = 255
    preview = _picture(video_thumbnail(str(media["h264.mp4"]), stream, "decord", tiny[None], [1.0]))
    assert preview.shape == (212, THUMBNAIL_WIDTH, 3)
    # The real frame (ffmpeg's test pattern, many colours) replaced the half-white sample.
    assert preview.reshape(-1, 3).std(axis=0).mean() > 40
    assert abs(preview[:, :160].mean() - 255) > 30
