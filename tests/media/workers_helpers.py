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


def call(fn, arg):
    return fn(arg)
