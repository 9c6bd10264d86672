"""The encoder registry: content blocks keyed by modality, model families pluggable."""

import pytest


def test_a_new_model_family_is_one_module_and_registry_entries(tmp_path, media, monkeypatch):
    """A visual encoder of a family embedder has never seen (tests/encoders/colour_family.py),
    plugged in through the registry alone, ingests and searches like the built-in ones."""
    from embedder import Library
    from embedder.encoders import registry
    from embedder.errors import SettingsError
    from embedder.settings import load_settings

    spec = registry.ModelSpec(
        name="colour-hist", family="colour", dim=64, arch="histogram", weights="none", image_size=32
    )
    monkeypatch.setitem(registry.MODELS, spec.name, spec)
    monkeypatch.setitem(registry.FAMILIES, "colour", registry.Family(("visual",), "tests.encoders.colour_family"))
    settings = load_settings(
        models="tiny", device="cpu", store=str(tmp_path / "store"), workers=1, max_frames=2, visual_model="colour-hist"
    )
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
    with pytest.raises(
        SettingsError, match="invalid setting 'audio_model': colour-hist \\(colour\\) encodes visual, not audio"
    ):
        from embedder.encoders.registry import modality_specs

        modality_specs(load_settings(models="tiny", audio_model="colour-hist"))


def test_the_bench_preset_builds_the_default_architectures_offline():
    """'bench': the default models' sizes with seeded random weights, for measuring speed only."""
    from embedder.encoders.bundle import load_encoders
    from embedder.encoders.registry import MODELS, PRESETS
    from embedder.settings import load_settings

    default_clip, default_clap = (MODELS[n] for n in PRESETS["default"])
    encoders = load_encoders(load_settings(models="bench", device="cpu"))
    assert encoders.dims == {
        "visual": default_clip.dim,
        "audio": default_clap.dim,
        "text": default_clip.dim,
        "content": default_clip.dim * 2 + default_clap.dim,
    }
    assert encoders.image_size == default_clip.image_size == 224
    clip, clap = encoders["visual"].model.model, encoders["audio"].model.model  # the torch modules
    assert 150e6 < sum(p.numel() for p in clip.parameters()) < 152e6  # ViT-B/32's 151.3 M
    assert list(clap.config.audio_config.depths) == [2, 2, 6, 2] and clap.config.text_config.num_hidden_layers == 12
    ids = encoders.model_ids
    assert ids["visual"] == "open_clip:ViT-B-32/random@bench" and ids["audio"] == "clap:ClapModel/random@bench"
    assert ids["audio"] != MODELS["tiny-clap"].model_id  # never mistaken for the tiny model's vectors
