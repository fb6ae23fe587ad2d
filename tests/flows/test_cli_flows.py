"""``marc-batch refresh | backfill | demo`` run the flows and speak JSON or one error line."""

import json
import os
import subprocess
from pathlib import Path

from prefect.settings import PREFECT_API_URL

from tests.conftest import run_cli
from tests.flows.test_pipeline_flows import config_file
from tests.pipeline.test_backfill import edit_items
from tests.tiny import ITEMS, USERS, config_for


def cli_env() -> dict[str, str]:
    """The test session's Prefect server, so each command skips starting its own."""
    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}


def test_refresh_then_backfill_then_demo(tmp_path: Path, registry: Path) -> None:
    path = config_file(tmp_path, config_for(tmp_path, registry))
    env = cli_env()

    failed = run_cli("backfill", "--config", str(path), env=env)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == (
        "error: nothing to backfill: the store has no snapshot yet; run a refresh first"
    )

    refreshed = run_cli("refresh", "--config", str(path), "--json", env=env)
    assert refreshed.returncode == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["rows"] == {"item": ITEMS, "user": USERS}

    edit_items(tmp_path / "catalogue" / "items.csv")
    backfilled = run_cli("backfill", "--config", str(path), "--json", env=env)
    assert backfilled.returncode == 0, backfilled.stderr
    change = json.loads(backfilled.stdout)["changes"]["item"]
    assert (change["added"], change["changed"], change["removed"]) == (1, 1, 1)

    demo = run_cli("demo", "--config", str(path), "--json", "-k", "3", env=env)
    assert demo.returncode == 0, demo.stderr
    report = json.loads(demo.stdout)
    assert not report["trained"] and report["refresh"]["version"] == 3
    assert [e["query"] for e in report["examples"]] == ["0", "1", "2"]
    assert all(len(e["neighbours"]) == 3 for e in report["examples"])
    shown = subprocess.run(
        report["duckdb"], shell=True, capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "embedding" in shown.stdout
