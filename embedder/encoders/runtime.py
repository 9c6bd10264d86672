"""Device and precision choices shared by the encoders."""

from __future__ import annotations

import contextlib

from embedder.errors import EmbedderError


def resolve_device(requested: str = "auto") -> str:
    """``auto`` means CUDA when present, else CPU. Asking for CUDA without one is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise EmbedderError(f"device '{requested}' was requested but CUDA is not available; use --device cpu")
    return requested


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
