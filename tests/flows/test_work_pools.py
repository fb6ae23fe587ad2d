"""The work-pool templates in deploy/ are accepted by a real Prefect server."""

import asyncio
import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate

TEMPLATES = Path(__file__).parents[2] / "deploy" / "work-pools"


@pytest.mark.parametrize(
    ("name", "pool_type"),
    [("process", "process"), ("docker-gpu", "docker"), ("kubernetes-gpu", "kubernetes")],
)
def test_template_is_accepted_and_keeps_the_gpu_settings(name: str, pool_type: str) -> None:
    template = json.loads((TEMPLATES / f"{name}.json").read_text())

    async def create() -> dict:
        async with get_client() as client:
            pool = await client.create_work_pool(
                WorkPoolCreate(name=f"test-{name}", type=pool_type, base_job_template=template),
                overwrite=True,
            )
            return pool.base_job_template

    stored = asyncio.run(create())
    assert stored == template
    defaults = {
        key: value.get("default") for key, value in template["variables"]["properties"].items()
    }
    assert defaults["env"]["HF_HUB_OFFLINE"] == "1"
    if pool_type == "docker":
        assert defaults["container_create_kwargs"]["device_requests"][0]["Capabilities"] == [
            ["gpu"]
        ]
    if pool_type == "kubernetes":
        pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
        assert container["volumeMounts"] == "{{ volume_mounts }}"
        assert pod["volumes"] == "{{ volumes }}"
