"""embedder: turn a library of video and audio files into searchable, recommendable vectors.

Importing this package is cheap on purpose: torch, decoders and model code are imported inside
the functions that need them, so ``embedder --help`` and light commands start fast.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # The public API, imported on first use so that "import embedder" stays light.
    if name == "Library":
        from embedder.library import Library

        return Library
    raise AttributeError(f"module 'embedder' has no attribute {name!r}")


__all__ = ["Library", "__version__"]
