"""Encoders: a registry of named model specs, and CLIP/CLAP wrappers that load them."""
