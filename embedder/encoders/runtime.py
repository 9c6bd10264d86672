"""Device and precision choices shared by the encoders."""

from __future__ import annotations

import contextlib
import logging

from embedder.errors import EmbedderError


def resolve_device(requested: str = "auto") -> str:
    """``auto`` means CUDA when present, else CPU. Asking for CUDA without one is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise EmbedderError(f"device '{requested}' was requested but CUDA is not available; use --device cpu")
    return requested


CPU_BATCH = 32  # frames per batch on a CPU: bigger batches are no faster there and hold more memory
CUDA_BATCH = 256  # on a GPU: enough to keep a ViT-B/32 busy (clip-retrieval's default too)


def batch_size_for(requested: int | str, device: str) -> int:
    """The frames per encoder batch: ``requested``, or for ``auto`` a size that suits the device."""
    if requested != "auto":
        return int(requested)
    return CUDA_BATCH if device.startswith("cuda") else CPU_BATCH


class Batches:
    """Runs an encoder over consecutive slices of its inputs. When CUDA runs out of memory the
    slice is halved and tried again, and the smaller size is kept for the rest of the process,
    so one batch size that is too big for a GPU costs a warning, not the run."""

    def __init__(self, device: str, name: str):
        self.device = device
        self.name = name
        self.cap: int | None = None  # the size that fitted after running out of memory

    def run(self, count: int, batch_size: int | str, encode) -> list:
        """``[encode(start, stop), ...]`` over ``range(count)`` in slices of at most ``batch_size``."""
        import torch

        size = batch_size_for(batch_size, self.device)
        if self.cap is not None:
            size = min(size, self.cap)
        out, start = [], 0
        while start < count:
            stop = min(count, start + size)
            try:
                out.append(encode(start, stop))
            except torch.cuda.OutOfMemoryError:
                if stop - start == 1:
                    raise
                size = self.cap = (stop - start) // 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                logging.getLogger("embedder").warning(
                    "%s ran out of GPU memory; going on with batches of %d (set batch_size to choose)", self.name, size
                )
                continue
            start = stop
        return out


def inference_context(device: str):
    """``inference_mode`` everywhere, plus bf16 (or fp16 where bf16 is missing) autocast on GPU.

    Autocast keeps layer norms and softmax in fp32, which plain ``model.half()`` would not.
    """
    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        stack.enter_context(torch.autocast(device_type="cuda", dtype=dtype))
    return stack


def to_device(tensor, device: str):
    """``tensor`` on ``device``; on CUDA from pinned memory without blocking this thread, so the
    copy overlaps the work already queued on the GPU."""
    if device.startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def l2_normalise(tensor):
    """Unit-length rows as float32 numpy (the stored and compared form of every embedding)."""
    import torch

    tensor = tensor.float()
    return torch.nn.functional.normalize(tensor, dim=-1).cpu().numpy()


@contextlib.contextmanager
def seeded(seed: int):
    """Build random weights from ``seed`` without disturbing the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def hub_online(timeout_s: float = 3.0) -> bool:
    """Can the Hugging Face hub be reached? Checked once, quickly, before any download.

    Without this, an offline machine spends over a minute in the hub client's retries before
    saying that weights are missing.
    """
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False
