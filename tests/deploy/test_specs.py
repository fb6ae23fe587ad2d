"""The deployment files agree with the code and with each other (no server, no cluster)."""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from prefect.utilities.templating import apply_values

from marc_batch.config import FlowsConfig
from marc_batch.parameters import (
    BackfillParameters,
    PublishParameters,
    RefreshParameters,
    RollbackParameters,
    TrainParameters,
)

REPO = Path(__file__).parents[2]
DEPLOY = REPO / "deploy"
IMAGE = "marc-batch:gpu"
PARAMETERS = {
    "nightly-refresh": RefreshParameters,
    "backfill": BackfillParameters,
    "train-model": TrainParameters,
    "publish": PublishParameters,
    "rollback": RollbackParameters,
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def flow_name(entrypoint: str) -> str:
    """The name in the ``@flow(name=...)`` of an entrypoint, read without importing it."""
    path, function = entrypoint.split(":")
    tree = ast.parse((REPO / path).read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    decorator = next(d for d in node.decorator_list if isinstance(d, ast.Call))
    assert isinstance(decorator.func, ast.Name) and decorator.func.id == "flow"
    return next(k.value.value for k in decorator.keywords if k.arg == "name")


def env_of(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def test_prefect_yaml_deploys_every_flow_with_valid_defaults() -> None:
    project = load(REPO / "prefect.yaml")
    assert project["build"] is None and project["push"] is None
    assert project["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $MARC_BATCH_HOME }}"}}
    ]
    deployments = {d["name"]: d for d in project["deployments"]}
    assert set(deployments) == set(PARAMETERS)
    for name, deployment in deployments.items():
        assert flow_name(deployment["entrypoint"]) == name
        assert deployment["work_pool"]["name"] == "marc-batch-process"
        assert deployment["enforce_parameter_schema"] is True
        assert deployment["description"] and "marc-batch" in deployment["tags"]
        PARAMETERS[name].model_validate(deployment["parameters"]["parameters"])
        if name != "nightly-refresh":
            assert "schedules" not in deployment
    (schedule,) = deployments["nightly-refresh"]["schedules"]
    assert schedule["cron"] == FlowsConfig().nightly_cron == "0 2 * * *"
    assert schedule["timezone"] == "UTC" and schedule["active"] is True


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_images_hold_the_code_where_the_pull_step_looks(name: str) -> None:
    dockerfile = (REPO / "docker" / f"{name}.Dockerfile").read_text()
    home = re.search(r"MARC_BATCH_HOME=(\S+)", dockerfile).group(1)
    assert f"WORKDIR {home}\nCOPY pyproject.toml README.md prefect.yaml ./" in dockerfile
    assert "COPY flows ./flows" in dockerfile and "COPY marc_batch ./marc_batch" in dockerfile
    # A worker's command (prefect flow-run execute) must run as given.
    assert not re.search(r"^ENTRYPOINT", dockerfile, re.MULTILINE)
    if name == "gpu":
        assert 'pip install ".[${EXTRAS}]"' in dockerfile and "ARG EXTRAS=ray" in dockerfile
        assert "wget" in dockerfile  # KubeRay's probes


def test_kubernetes_pool_renders_gpus_and_registry_volumes() -> None:
    template = json.loads((DEPLOY / "work-pools" / "kubernetes-gpu.json").read_text())
    variables = {
        key: value.get("default") for key, value in template["variables"]["properties"].items()
    }
    variables.update(
        volumes=[{"name": "models", "persistentVolumeClaim": {"claimName": "marc-batch-models"}}],
        volume_mounts=[{"name": "models", "mountPath": "/models"}],
    )
    job = apply_values(template["job_configuration"], variables)["job_manifest"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["volumeMounts"] == variables["volume_mounts"]
    assert pod["volumes"] == variables["volumes"]


def test_dask_cluster_spec() -> None:
    spec = load(DEPLOY / "clusters" / "dask-kubernetes.yaml")
    assert (spec["apiVersion"], spec["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    name = spec["metadata"]["name"]
    (scheduler,) = spec["spec"]["scheduler"]["spec"]["containers"]
    assert scheduler["image"] == IMAGE and scheduler["args"] == ["dask", "scheduler"]
    assert "nvidia.com/gpu" not in scheduler.get("resources", {}).get("limits", {})
    service = spec["spec"]["scheduler"]["service"]
    assert service["selector"]["dask.org/cluster-name"] == name
    assert {p["name"]: p["port"] for p in service["ports"]}["tcp-comm"] == 8786

    worker = spec["spec"]["worker"]
    (container,) = worker["spec"]["containers"]
    assert container["image"] == IMAGE and container["args"][:2] == ["dask", "worker"]
    threads = container["args"][container["args"].index("--nthreads") + 1]
    assert threads == "1" and container["resources"]["limits"]["nvidia.com/gpu"] == 1
    check_worker_environment(container, worker["spec"])


def test_ray_cluster_spec() -> None:
    spec = load(DEPLOY / "clusters" / "ray-cluster.yaml")
    assert (spec["apiVersion"], spec["kind"]) == ("ray.io/v1", "RayCluster")
    head = spec["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    (head_container,) = head["template"]["spec"]["containers"]
    assert head_container["image"] == IMAGE
    assert {p["name"]: p["containerPort"] for p in head_container["ports"]}["client"] == 10001

    (group,) = spec["spec"]["workerGroupSpecs"]
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    (container,) = group["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    check_worker_environment(container, group["template"]["spec"])


def check_worker_environment(container: dict, pod: dict) -> None:
    """Offline models, the store, the registry volume and the Prefect API, as in the flow runs."""
    env = env_of(container)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["MARC_BATCH_STORE__ROOT"].startswith("s3://")
    assert env["PREFECT_API_URL"].endswith("/api")
    registry = env["MARC_BATCH_MODEL__REGISTRY"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (name,) = [n for n, path in mounts.items() if path == registry]
    assert volumes[name]["persistentVolumeClaim"]["claimName"] == "marc-batch-models"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
