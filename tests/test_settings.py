import pytest

from embedder.errors import SettingsError
from embedder.settings import load_settings


def test_precedence_defaults_file_env_flags(tmp_path, monkeypatch):
    assert load_settings().max_frames == 32
    config = tmp_path / "embedder.toml"
    config.write_text('max_frames = 8\nvideo_fps = 2.0\nstore = "/data/vectors"\n')
    s = load_settings()  # ./embedder.toml is picked up (tests run in tmp_path)
    assert (s.max_frames, s.video_fps, s.store) == (8, 2.0, "/data/vectors")
    monkeypatch.setenv("EMBEDDER_MAX_FRAMES", "5")
    s = load_settings()
    assert (s.max_frames, s.video_fps) == (5, 2.0)
    s = load_settings(max_frames=3, video_fps=None)  # an unset flag does not hide the env
    assert (s.max_frames, s.video_fps) == (3, 2.0)


def test_explicit_and_env_config_file(tmp_path, monkeypatch):
    other = tmp_path / "other.toml"
    other.write_text('models = "tiny"\n')
    monkeypatch.setenv("EMBEDDER_CONFIG", str(other))
    assert load_settings().models == "tiny"
    with pytest.raises(SettingsError, match="config file .*missing.toml does not exist"):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"EMBEDDER_DEVICE": "tpu"},
            "invalid setting 'device' (EMBEDDER_DEVICE): Value error, must be auto, cpu, cuda or cuda:N",
        ),
        (
            {"EMBEDDER_STORE": "ftp://x"},
            "invalid setting 'store' (EMBEDDER_STORE): Value error, a URL must start with http:// or https://",
        ),
        (
            {"EMBEDDER_VIDEO_FPS": "0"},
            "invalid setting 'video_fps' (EMBEDDER_VIDEO_FPS): Input should be greater than 0",
        ),
        (
            {"EMBEDDER_AUDIO_WINDOW_S": "30"},
            "invalid setting 'audio_window_s' (EMBEDDER_AUDIO_WINDOW_S): Input should be less than or equal to 10",
        ),
    ],
)
def test_invalid_values_name_the_setting(monkeypatch, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == message


def test_unknown_key_in_file(tmp_path):
    (tmp_path / "embedder.toml").write_text("max_frame = 3\n")
    with pytest.raises(SettingsError, match="unknown setting 'max_frame'"):
        load_settings()


def test_store_kinds():
    assert load_settings(store="http://localhost:6333").is_server
    assert not load_settings(store="/tmp/x").is_server
    assert load_settings().store.endswith("embedder/store")


def test_shipped_configs_resolve_from_any_directory(tmp_path, monkeypatch):
    import subprocess
    import sys

    from embedder.train.config import load_train_config

    monkeypatch.chdir(tmp_path)  # not the repository root
    assert load_train_config("pipelines/configs/train-apr.toml").adversarial.enabled is True
    proc = subprocess.run(
        [sys.executable, "-m", "embedder.cli", "jobs", "list", "--json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "nightly-reembed" in proc.stdout
    (tmp_path / "pipelines").mkdir()  # a file of the user's own with the same name wins
    (tmp_path / "pipelines" / "jobs.toml").write_text('[jobs.mine]\ncron = "0 1 * * *"\nsteps = [["status"]]\n')
    proc = subprocess.run(
        [sys.executable, "-m", "embedder.cli", "jobs", "list", "--json"], capture_output=True, text=True, timeout=120
    )
    assert '"mine"' in proc.stdout and "nightly-reembed" not in proc.stdout
