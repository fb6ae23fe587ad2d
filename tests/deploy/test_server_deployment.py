"""prefect.yaml on a real Prefect server: deployed with the CLI, run by a process worker.

The server (SQLite under tmp_path), ``prefect work-pool create`` with
deploy/work-pools/process.json, ``prefect deploy --all`` and ``prefect
worker start`` each run in a process of their own, as an operator runs
them; the backfill deployment then runs on the worker, which finds the code
through the pull step's ``$MARC_BATCH_HOME``, and leaves its snapshot in
the store."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, open_snapshot
from marc_batch.store.channels import read_channel
from marc_batch.store.validate import validate
from tests.pipeline.test_backfill import edit_items
from tests.tiny import ITEMS, USERS, config_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[2]
PREFECT = [sys.executable, "-m", "prefect"]
POOL = "marc-batch-process"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DEPLOYMENTS = {"nightly-refresh", "backfill", "train-model", "publish", "rollback"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Processes:
    """Long-running children, each in its own process group, logging to a file."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Path:
        log = self.logs / f"{name}.log"
        with log.open("w") as out:
            self.running.append(
                subprocess.Popen(
                    args,
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        return log

    def alive(self, index: int) -> bool:
        return self.running[index].poll() is None

    def stop(self) -> None:
        """Newest first: TERM to each group, then KILL to what is left, flow runs included."""
        gone = (ProcessLookupError, psutil.NoSuchProcess)
        for process in reversed(self.running):
            descendants: list[psutil.Process] = []
            with suppress(*gone):
                # A flow run may sit in a session of its own: note it before its parent exits.
                descendants = psutil.Process(process.pid).children(recursive=True)
            with suppress(*gone):
                os.killpg(process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
            with suppress(*gone):
                os.killpg(process.pid, signal.SIGKILL)
            for child in descendants:
                with suppress(*gone):
                    child.kill()
            process.wait(timeout=15)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    children = Processes(tmp_path)
    try:
        yield children
    finally:
        children.stop()


def prefect_env(home: Path, api_url: str, **extra: str) -> dict[str, str]:
    """This machine's environment without any Prefect or marc-batch settings, plus ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "MARC_BATCH_"))
    }
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        **extra,
    )
    return env


def prefect(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*PREFECT, "--no-prompt", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(command: subprocess.Popen, timeout: float) -> str:
    try:
        output, _ = command.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        command.kill()
        output, _ = command.communicate()
        pytest.fail(f"{command.args} took over {timeout}s:\n{output}")
    assert command.returncode == 0, f"{command.args} failed:\n{output}"
    return output


class ServerRetries(httpx.HTTPTransport):
    """Sends a request again while the server answers 503.

    The server answers 503 when SQLite is busy (the worker polls it every
    second) and means "retry"; Prefect's own client retries these, and so
    must a test that speaks to the API directly."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(6):
            response = super().handle_request(request)
            if response.status_code != 503:
                return response
            response.close()
            time.sleep(0.25 * 2**attempt)
        return super().handle_request(request)


def wait_for_health(api: httpx.Client, processes: Processes, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert processes.alive(0), f"the server exited:\n{tail(log)}"
        try:
            if api.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the server did not answer /api/health:\n{tail(log)}")


def wait_for_final_state(api: httpx.Client, run_id: str, processes: Processes, log: Path) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert processes.alive(-1), f"the worker exited:\n{tail(log)}"
        state = api.get(f"/flow_runs/{run_id}").raise_for_status().json()["state"]
        if state and state["type"] in FINAL:
            return state
        time.sleep(1)
    pytest.fail(f"the run did not finish in 240 s:\n{tail(log)}")


def test_backfill_deployment_runs_on_a_process_worker(
    tmp_path: Path, registry: Path, processes: Processes
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "prefect-home"
    server_log = processes.start(
        "server",
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        prefect_env(
            home,
            url,
            PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
            # No nightly run may be scheduled (and picked up) while the test runs.
            PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        ),
    )

    # While the server starts: a published first snapshot, then a changed catalogue.
    config = config_for(tmp_path, registry)
    first = refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")
    config_path = tmp_path / "marc-batch.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    env = prefect_env(home, url)
    with httpx.Client(base_url=url, timeout=30, transport=ServerRetries()) as api:
        wait_for_health(api, processes, server_log)
        # The limit the encode tasks take; `prefect gcl create gpu --limit 1` does the same.
        api.post("/v2/concurrency_limits/", json={"name": "gpu", "limit": 1}).raise_for_status()
        template = REPO / "deploy" / "work-pools" / "process.json"
        create_pool = ["work-pool", "create", POOL, "--type", "process"]
        finish(prefect(*create_pool, "--base-job-template", str(template), env=env), 120)

        worker_log = processes.start(
            "worker",
            [*PREFECT, "worker", "start", "--pool", POOL],
            prefect_env(home, url, MARC_BATCH_HOME=str(REPO), PREFECT_WORKER_QUERY_SECONDS="1"),
        )
        # Deployed without MARC_BATCH_HOME: the worker's value applies when a run starts.
        finish(prefect("deploy", "--all", env=env), 240)

        deployments = {
            d["name"]: d for d in api.post("/deployments/filter", json={}).raise_for_status().json()
        }
        assert set(deployments) == DEPLOYMENTS
        assert {d["work_pool_name"] for d in deployments.values()} == {POOL}
        for deployment in deployments.values():
            assert deployment["pull_steps"] == [
                {
                    "prefect.deployments.steps.set_working_directory": {
                        "directory": "{{ $MARC_BATCH_HOME }}"
                    }
                }
            ]
        nightly = deployments["nightly-refresh"]["schedules"]
        assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in nightly] == [
            ("0 2 * * *", "UTC")
        ]
        assert all(not deployments[name]["schedules"] for name in DEPLOYMENTS - {"nightly-refresh"})

        # What `prefect deployment run backfill/backfill --params ...` does.
        create_run = f"/deployments/{deployments['backfill']['id']}/create_flow_run"
        refused = api.post(create_run, json={"parameters": {"parameters": {"chanel": "prod"}}})
        assert refused.status_code == 409 and "'chanel' was unexpected" in refused.text
        run = api.post(
            create_run, json={"parameters": {"parameters": {"config": str(config_path)}}}
        )
        run_id = run.raise_for_status().json()["id"]
        state = wait_for_final_state(api, run_id, processes, worker_log)
        assert state["type"] == "COMPLETED", (state, tail(worker_log))
        artifacts = api.post(
            "/artifacts/filter", json={"artifacts": {"key": {"any_": ["backfill"]}}}
        ).json()
        assert any("+1 ~1 -1" in a["data"] for a in artifacts if a["flow_run_id"] == run_id)

    worker_output = worker_log.read_text(errors="replace")
    assert "backfill: version 2" in worker_output
    assert "Concurrency limits ['gpu'] do not exist" not in worker_output

    store = Store(config.store)
    manifest = store.resolve("latest")
    assert (manifest.version, manifest.parent_version) == (first.version + 1, first.version)
    assert manifest.operation == "incremental" and manifest.run_id == run_id
    assert manifest.rows == {"item": ITEMS, "user": USERS}
    assert validate(store, manifest) == []
    pointer, _ = read_channel(store.backend, "latest")
    assert (pointer.version, pointer.history[:1]) == (manifest.version, [first.version])
    items = open_snapshot(store, "latest").table("item")
    ids = set(items["id"].to_pylist())
    assert "60" in ids and "5" not in ids
