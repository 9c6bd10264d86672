"""embedder: turn a library of video and audio files into searchable, recommendable vectors.

Importing this package is cheap on purpose: torch, decoders and model code are imported inside
the functions that need them, so ``embedder --help`` and light commands start fast.
"""

__version__ = "0.1.0"
