"""The Kubernetes manifests in docker/k8s: valid against the Kubernetes OpenAPI schemas, offline
and strict (kubernetes-validate), and consistent with the code they run."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
import yaml
from kubernetes_validate.utils import ValidationError, validate

from embedder.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "docker" / "k8s").glob("*.yaml"))
K8S_VERSION = "1.33.0"


def _objects(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _pods(obj: dict) -> list[dict]:
    """The pod specs inside a workload."""
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    return [spec["template"]["spec"]] if "template" in spec else []


def test_every_object_is_valid_kubernetes_and_an_unknown_field_would_not_be():
    assert [p.name for p in MANIFESTS] == ["embedded.yaml", "qdrant.yaml"]
    for path in MANIFESTS:
        for obj in _objects(path):
            validate(obj, K8S_VERSION, strict=True)
    wrong = copy.deepcopy(_objects(MANIFESTS[0])[3])  # the Deployment, with a misspelt field
    wrong["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = wrong["spec"]["template"]["spec"][
        "containers"
    ][0].pop("readinessProbe")
    with pytest.raises(ValidationError):
        validate(wrong, K8S_VERSION, strict=True)


def test_probes_env_and_mounts_match_the_code():
    for path in MANIFESTS:
        claims = {o["metadata"]["name"] for o in _objects(path) if o["kind"] == "PersistentVolumeClaim"}
        for obj in _objects(path):
            templates = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
            for pod in _pods(obj):
                volumes = {v["name"]: v for v in pod.get("volumes", [])} | {t: {} for t in templates}
                for volume in volumes.values():  # every claim a pod mounts is declared in the file
                    assert not volume or volume["persistentVolumeClaim"]["claimName"] in claims
                for container in pod["containers"]:
                    for mount in container.get("volumeMounts", []):
                        assert mount["name"] in volumes, (path.name, mount)
                    for var in container.get("env", []):
                        if var["name"].startswith(ENV_PREFIX):  # a real setting, not a typo
                            assert var["name"][len(ENV_PREFIX) :].lower() in Settings.model_fields, var["name"]
                    args = container.get("args", [])
                    if container["name"] != "serve":
                        continue
                    port = int(args[args.index("--port") + 1])
                    assert container["ports"][0]["containerPort"] == port
                    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
                    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
                    assert {"/data", "/app/runs", "/models"} <= {m["mountPath"] for m in container["volumeMounts"]}


def test_the_embedded_store_has_one_writer_that_runs_the_jobs_itself():
    deployment = next(o for o in _objects(MANIFESTS[0]) if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--schedule" in args and args[args.index("--jobs") + 1] == "/app/pipelines/jobs.toml"
    assert not [o for o in _objects(MANIFESTS[0]) if o["kind"] == "CronJob"]  # they would fail on the lock


def test_with_a_qdrant_server_each_scheduled_job_is_a_cronjob_that_never_overlaps():
    jobs = tomllib.loads((ROOT / "pipelines" / "jobs.toml").read_text())["jobs"]
    cronjobs = {o["metadata"]["name"]: o for o in _objects(MANIFESTS[1]) if o["kind"] == "CronJob"}
    assert set(cronjobs) == set(jobs)
    for name, cronjob in cronjobs.items():
        assert cronjob["spec"]["schedule"] == jobs[name]["cron"] and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
        container = _pods(cronjob)[0]["containers"][0]
        assert container["args"][:3] == ["jobs", "run", name]
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["EMBEDDER_STORE"] == "http://qdrant:6333"  # never the image's throwaway /data/store
