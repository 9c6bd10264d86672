"""The media layer: discover files, probe them, decode frames, audio windows and text."""
