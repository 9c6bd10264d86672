"""The encoder registry: content blocks keyed by modality, model families pluggable."""

import pytest


def test_a_new_model_family_is_one_module_and_registry_entries(tmp_path, media, monkeypatch):
    """A visual encoder of a family embedder has never seen (tests/encoders/colour_family.py),
    plugged in through the registry alone, ingests and searches like the built-in ones."""
    from embedder import Library
    from embedder.encoders import registry
    from embedder.errors import SettingsError
    from embedder.settings import load_settings

    spec = registry.ModelSpec(name="colour-hist", family="colour", dim=64, arch="histogram", weights="none", image_size=32)
    monkeypatch.setitem(registry.MODELS, spec.name, spec)
    monkeypatch.setitem(registry.FAMILIES, "colour", registry.Family(("visual",), "tests.encoders.colour_family"))
    settings = load_settings(models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2,
                             visual_model="colour-hist")
    with Library.open(settings) as lib:
        assert lib.encoders.model_ids["visual"] == "colour:histogram/none@1" and lib.encoders.dims["content"] == 64 * 3
        assert lib.encoders.image_size == 32
        summary = lib.ingest([media["h264.mp4"], media["vp9.webm"], media["tone.mp3"]])
        assert len(summary.new) == 3 and not summary.failed
        stored = {r.payload["path"]: r for r in lib.media.scroll(with_vectors=True)}
        video = stored[str(media["h264.mp4"])]
        assert video.payload["models"]["visual"] == "colour:histogram/none@1" and len(video.vectors["visual"]) == 64
        hits = lib.search(like=media["h264.mp4"], modality="visual", limit=5)
        assert [h.path for h in hits] == [str(media["vp9.webm"])]  # the only other file with frames
    with pytest.raises(SettingsError, match="invalid setting 'audio_model': colour-hist \\(colour\\) encodes visual, not audio"):
        from embedder.encoders.registry import modality_specs

        modality_specs(load_settings(models="tiny", audio_model="colour-hist"))
