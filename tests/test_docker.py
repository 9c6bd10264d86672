"""The deployment files: what can be checked without a Docker engine."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_image_installs_exactly_like_the_readme():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN")]
    assert runs == ["RUN bash scripts/setup.sh \\"]  # the README's set-up, nothing else installs
    assert "bash scripts/demo.sh" in (ROOT / "README.md").read_text()
    assert 'ENTRYPOINT ["embedder"]' in dockerfile
    for copied in ("pyproject.toml", "requirements.lock", "scripts", "embedder", "pipelines"):
        assert copied in dockerfile


def test_compose_has_qdrant_worker_and_scheduler_with_secrets_from_the_environment():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"qdrant", "ingest", "scheduler", "serve"}
    assert services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"] == "${QDRANT_API_KEY:?set QDRANT_API_KEY}"
    assert services["qdrant"]["environment"]["QDRANT__SERVICE__ENABLE_TLS"] == "${QDRANT_ENABLE_TLS:-false}"
    for name in ("ingest", "scheduler", "serve"):
        env = services[name]["environment"]
        assert env["EMBEDDER_API_KEY"] == "${QDRANT_API_KEY:?set QDRANT_API_KEY}"
        assert env["EMBEDDER_STORE"].startswith("${EMBEDDER_STORE:-http://qdrant:6333}")
        assert services[name]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
        assert "models:/models" in services[name]["volumes"]
    assert services["scheduler"]["command"] == ["jobs", "serve", "--jobs", "/app/pipelines/jobs.toml"]
    assert services["ingest"]["command"] == ["ingest", "/media"]
    # serve listens on every interface inside its container, so it must have its own API key
    assert services["serve"]["command"][:3] == ["serve", "--host", "0.0.0.0"]
    assert (
        services["serve"]["environment"]["EMBEDDER_SERVE_API_KEY"]
        == "${EMBEDDER_SERVE_API_KEY:?set EMBEDDER_SERVE_API_KEY}"
    )
