"""Functions run inside isolated workers by the tests (importable by the child process)."""

import os
import time

from embedder.errors import MediaError


def crash(path):
    os.abort()  # what a decoder's C++ terminate looks like from outside


def hang(path):
    time.sleep(60)


def refuse(path):
    raise MediaError(path, "decode", "refused on purpose")


def broken(path):
    return {}["missing"]


def echo(path):
    return f"read {path}"


def pid(path):
    return os.getpid()


def call(fn, arg):
    return fn(arg)


def decode_but_abort_on_vp9(path, options):
    """The real decode, except that a file named *vp9* kills its worker the way a decoder's C++
    ``terminate`` does (for the executors' crash tests)."""
    from embedder.media.decode import decode_item

    if "vp9" in os.path.basename(path):
        os.abort()
    return decode_item(path, options)


def frames(path):
    """A decoded-looking result: 4 MB of frames and a small list, with the path."""
    import numpy as np

    pixels = np.arange(4 * 1024 * 1024, dtype=np.uint32).reshape(1024, 1024, 4).astype(np.uint8)
    return {"path": path, "frames": pixels, "windows": [np.linspace(0, 1, 1000, dtype=np.float32)]}
