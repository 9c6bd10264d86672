"""Small JPEG previews made while a file is decoded: a frame for video, a waveform for audio.

They are made in the decode worker from a sampled frame (decoded once more at preview size only
when the samples are smaller than the preview); they travel with the decoded item and are written beside the store by
:class:`ThumbnailStore`, named by point id, and removed when their item leaves for good.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

THUMBNAIL_WIDTH = 320
MOMENT_WIDTH = 160  # a segment's preview: small, many per video
WAVEFORM_HEIGHT = 96
JPEG_QUALITY = 80


def representative_index(frames: np.ndarray) -> int:
    """The sampled frame with the most detail (highest pixel spread), so that a black intro, a
    fade or a blank title card is never the face of a video."""
    # Every 4th pixel each way: the spread is a property of the whole picture, and 1/16 of the
    # pixels read it for 1/16 of the cost.
    sparse = frames[:, ::4, ::4]
    spread = sparse.reshape(sparse.shape[0], -1).astype(np.float32).std(axis=1)
    return int(np.argmax(spread))


def _jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def small_jpeg(rgb: np.ndarray, width: int = MOMENT_WIDTH) -> bytes:
    """A JPEG ``width`` pixels wide of one sampled frame (a segment's preview)."""
    from PIL import Image

    height = max(2, round(width * rgb.shape[0] / max(1, rgb.shape[1])))
    picture = Image.fromarray(np.ascontiguousarray(rgb[..., :3])).resize((width, height), Image.BILINEAR)
    return _jpeg(np.asarray(picture))


def video_thumbnail(path: str, stream, decoder_name: str, frames: np.ndarray, times: list[float]) -> bytes:
    """A JPEG, :data:`THUMBNAIL_WIDTH` wide, of the most detailed sampled frame.

    Sampled frames are whole pictures at the encoder's size. When one is at least as wide as the
    preview (398 px for a 16:9 video and 224-px models) it is scaled down; when it is smaller (32 px
    for the tiny models) the frame is decoded again at preview size with the decoder that read the
    samples, and if that fails, the small frame is scaled up.
    """
    from PIL import Image

    from embedder.media.video import _decode, _open

    index = representative_index(frames)
    width = THUMBNAIL_WIDTH
    height = max(2, round(width * (stream.height or 9) / (stream.width or 16)) // 2 * 2)
    picture = None
    if frames.shape[2] < width:
        try:
            decoded, _ = _decode(_open(decoder_name, path, stream, (height, width)), [times[index]])
            picture = decoded[0]
        except Exception:  # the samples decoded, so a preview is never worth failing the file for
            pass
    if picture is None:
        sample = np.ascontiguousarray(frames[index][..., :3])
        picture = np.asarray(Image.fromarray(sample).resize((width, height), Image.BILINEAR))
    return _jpeg(np.ascontiguousarray(picture[..., :3]))


def waveform_thumbnail(windows: list[np.ndarray], width: int = THUMBNAIL_WIDTH, height: int = WAVEFORM_HEIGHT) -> bytes:
    """A JPEG of the audio's envelope (min and max per pixel column) over the decoded windows."""
    samples = np.concatenate(windows) if windows else np.zeros(width, dtype=np.float32)
    columns = np.array_split(samples.astype(np.float32), width)
    low = np.array([c.min() if c.size else 0.0 for c in columns])
    high = np.array([c.max() if c.size else 0.0 for c in columns])
    peak = max(float(np.abs(samples).max()), 1e-6)
    mid = (height - 1) / 2
    top = np.clip(np.round(mid - high / peak * mid), 0, height - 1).astype(int)
    bottom = np.clip(np.round(mid - low / peak * mid), 0, height - 1).astype(int)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = (24, 28, 38)  # dark background, the page's colours
    rows = np.arange(height)[:, None]
    mask = (rows >= top[None, :]) & (rows <= bottom[None, :])
    image[mask] = (94, 185, 247)
    image[int(mid)] = np.where(mask[int(mid)][:, None], image[int(mid)], (60, 66, 80))
    return _jpeg(image)


class ThumbnailStore:
    """The thumbnails of one store and collection: ``<dir>/<point id>.jpg``, and the item's
    segment previews in ``<dir>/<point id>.moments/<segment>.jpg``."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def path(self, point_id: str) -> Path:
        return self.directory / f"{point_id}.jpg"

    def put(self, point_id: str, jpeg: bytes) -> None:
        """Write atomically (a reader never sees half a file)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(point_id)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(jpeg)
        os.replace(partial, target)

    def get(self, point_id: str) -> Path | None:
        target = self.path(point_id)
        return target if target.is_file() else None

    def moments_dir(self, point_id: str) -> Path:
        return self.directory / f"{point_id}.moments"

    def put_moments(self, point_id: str, jpegs: list[bytes | None]) -> None:
        """Write an item's segment previews (replacing any from an earlier cut)."""
        import shutil

        folder = self.moments_dir(point_id)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        for number, jpeg in enumerate(jpegs):
            if jpeg:
                (folder / f"{number}.jpg").write_bytes(jpeg)

    def get_moment(self, point_id: str, segment: int) -> Path | None:
        target = self.moments_dir(point_id) / f"{int(segment)}.jpg"
        return target if target.is_file() else None

    def remove(self, point_ids) -> int:
        """Delete the thumbnails of these items; returns how many there were."""
        import shutil

        removed = 0
        for point_id in point_ids:
            shutil.rmtree(self.moments_dir(str(point_id)), ignore_errors=True)
            try:
                self.path(str(point_id)).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed
