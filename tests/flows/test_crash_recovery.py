"""What users hit: a CLI run killed with a persistent Prefect home must not wedge the next one.

Each test runs the real ``marc-batch`` command in a subprocess with its own
``PREFECT_HOME`` kept across runs (so each run starts its own ephemeral
server on the same database), as a machine running the nightly refresh
would. Every subprocess is bounded by a timeout, so a regression fails
instead of hanging.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from marc_batch.store import Store
from marc_batch.store.failpoints import ENV, SHARD_ENCODED
from tests.flows.test_pipeline_flows import config_file, content
from tests.pipeline.test_backfill import edit_items
from tests.tiny import ITEMS, config_for

SERVER = "prefect.server.api.server:create_app"


def home_env(home: Path, **settings: str) -> dict[str, str]:
    """A fresh environment on the persistent Prefect home ``home``: no shared server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MARC_BATCH_"))}
    return {**env, "PREFECT_HOME": str(home), **settings}


def start(config: Path, env: dict[str, str], command: str = "refresh") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "marc_batch", command, "--config", str(config), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def servers_of(home: Path) -> list[int]:
    """Pids of ephemeral Prefect servers running on ``home``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if SERVER.encode() in command and f"PREFECT_HOME={home}".encode() in environ:
            found.append(int(entry.name))
    return found


def no_server_left(home: Path, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while servers_of(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    return not servers_of(home)


def killed_at(
    config: Path, home: Path, point: str, command: str = "refresh", **settings: str
) -> None:
    """A run that SIGKILLs itself (the CLI process alone) at failpoint ``point``."""
    crashed = start(config, home_env(home, **{ENV: point}, **settings), command)
    _, err = crashed.communicate(timeout=300)
    assert crashed.returncode == -signal.SIGKILL, err[-3000:]


def finishes(config: Path, home: Path, command: str = "refresh") -> dict:
    """A run on ``home`` that must succeed within two minutes; its ``--json`` report."""
    began = time.monotonic()
    rerun = start(config, home_env(home), command)
    out, err = rerun.communicate(timeout=300)
    elapsed = time.monotonic() - began
    assert rerun.returncode == 0, err[-3000:]
    assert elapsed < 120, f"the {command} took {elapsed:.0f} s"
    return json.loads(out)


def test_runs_killed_holding_the_slot_or_before_the_move_are_finished_by_the_next(
    tmp_path: Path, registry: Path
) -> None:
    settings = config_for(tmp_path, registry)  # writes the catalogue: once, before the edit
    config = config_file(tmp_path, settings)
    home = tmp_path / "prefect-home"
    killed_at(config, home, SHARD_ENCODED)
    assert no_server_left(home), "the killed command's ephemeral server outlived it"
    finishes(config, home)  # after waiting out the dead holder's lease
    store = Store(settings.store)
    assert store.resolve("latest").rows["item"] == ITEMS
    edit_items(tmp_path / "catalogue" / "items.csv")

    killed_at(config, home, SHARD_ENCODED, "backfill")
    # This one waits out the dead holder's lease, commits, and dies before the channel moves.
    killed_at(config, home, "manifest.committed", "backfill")
    assert (store.head().version, store.resolve("latest").version) == (2, 1)

    # It verifies and publishes version 2, then finds nothing left to do.
    report = finishes(config, home, "backfill")
    assert (report["version"], report["committed"]) == (2, False), report
    ids = content(store, "item")["id"].to_pylist()
    assert store.resolve("latest").version == 2 and "60" in ids and "5" not in ids
    assert no_server_left(home)


def test_a_run_waiting_for_a_slot_stops_on_sigterm_and_gives_up_with_one_line(
    tmp_path: Path, registry: Path
) -> None:
    config = config_file(tmp_path, config_for(tmp_path, registry))
    home = tmp_path / "prefect-home"
    # The dead holder's lease is long, so the next runs find the slot taken.
    killed_at(config, home, SHARD_ENCODED, MARC_BATCH_FLOWS__SLOT_LEASE_SECONDS="600")

    waiting = start(config, home_env(home))
    deadline = time.monotonic() + 240
    seen = ""
    while "waiting for a 'gpu' slot" not in seen:
        assert time.monotonic() < deadline and waiting.poll() is None, seen[-3000:]
        seen += waiting.stderr.readline()
    assert "1 of 1 slot(s) in use: task_run" in seen
    stopped_at = time.monotonic()
    waiting.send_signal(signal.SIGTERM)
    _, rest = waiting.communicate(timeout=30)
    assert time.monotonic() - stopped_at < 10
    assert waiting.returncode == 128 + signal.SIGTERM
    assert rest.strip().splitlines()[-1].startswith("error: stopped by signal 15")
    assert no_server_left(home)

    impatient = start(config, home_env(home, MARC_BATCH_FLOWS__SLOT_WAIT_SECONDS="5"))
    _, err = impatient.communicate(timeout=300)
    assert impatient.returncode == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err[-3000:]
    assert errors[0].startswith("error: no 'gpu' slot came free in 5 s (flows.slot_wait_seconds)")
