"""A random-kill campaign: real ``marc-batch refresh`` commands SIGKILLed at random moments.

The fault tests of ``test_kills.py`` stop a run at named points; a user's
machine stops it anywhere (OOM killer, lost node, ``kill -9``). Here every
run shares one persistent ``PREFECT_HOME`` and one store, as the nightly
refresh on one machine does, so whatever a killed run leaves behind
(checkpoints, a committed but unpublished version, a ``gpu`` slot held by a
dead holder, a database mid-write) is what the next run finds.

After every kill: ``marc-batch snapshots validate`` on every channel, a
reader in another process that opens the latest snapshot and checks its
rows, and a comparison with an uninterrupted run's content. After the last
kill a run must complete. Kills come at seeded random moments over how long
an uninterrupted run took here (see ``ANYWHERE``).

``MARC_BATCH_KILL_CAMPAIGN`` sets the number of kills; ``make reliability``
asks for 25 (about 20 minutes on 2 cores). Unset, the test is skipped: one
cycle costs about a minute here (the CLI's imports and its server's start),
and ``tests/flows/test_crash_recovery.py`` already runs a killed CLI and its
re-run in ``make test``. ``MARC_BATCH_KILL_SEED`` picks the moments.
"""

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from flows.slots import POLL_SECONDS
from marc_batch.store import Store
from marc_batch.store.channels import list_channels
from tests.flows.test_crash_recovery import home_env, no_server_left, start
from tests.flows.test_pipeline_flows import config_file
from tests.reliability.conftest import Ledger
from tests.reliability.helpers import check_snapshot, published, rows_lost, same_content
from tests.reliability.test_kills import stray_files
from tests.tiny import config_for

KILLS = int(os.environ.get("MARC_BATCH_KILL_CAMPAIGN", "0"))
SEED = int(os.environ.get("MARC_BATCH_KILL_SEED", "14"))
RUN_TIMEOUT = 600.0
WAITING = "waiting for a 'gpu' slot"
GAVE_UP = "no 'gpu' slot came free"
FLOW_BEGAN = "Beginning flow run"
# Most of a run is imports and the ephemeral server's start; two kills in three land
# while its flows run (and touch the store), the third anywhere in the run.
ANYWHERE = 1 / 3
# A dead holder's slot is free once its lease (60 s, Prefect's floor) expires; a waiting
# run sees that at its next poll. Waiting longer than that means the slot leaked.
LEAK_SECONDS = 60.0 + 1.5 * POLL_SECONDS

# Run in a separate process: what a service reading the store while refreshes die sees.
READER = """
import json, sys
from marc_batch.config import load_config
from marc_batch.store import Store, open_snapshot
snapshot = open_snapshot(Store(load_config(sys.argv[1]).store), "latest", verify=True)
manifest, found = snapshot.manifest, {}
for entity, expected in manifest.rows.items():
    figures = manifest.conservation[entity]
    found[entity] = {
        "rows": snapshot.table(entity).num_rows,
        "expected": expected,
        "conserved": figures.rows_in == figures.embedded + figures.quarantined,
    }
print(json.dumps({"version": manifest.version, "entities": found}))
"""


@dataclass
class Run:
    """One CLI run: how it ended and its stderr lines with their arrival times."""

    code: int
    began: float
    seconds: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return self.code == -9

    def slot_wait(self) -> float:
        """Seconds spent waiting for a ``gpu`` slot (each warning follows one failed poll)."""
        times = [t for t, line in self.lines if WAITING in line]
        return times[-1] - times[0] + POLL_SECONDS if times else 0.0

    def window(self) -> tuple[float, float]:
        """When the flow began (after imports and the server's start) and when the run ended."""
        flows = [t - self.began for t, line in self.lines if FLOW_BEGAN in line]
        return (flows[0] if flows else 0.0), self.seconds

    def gave_up_on_slot(self) -> bool:
        return any(GAVE_UP in line for _, line in self.lines)

    def tail(self) -> str:
        return "".join(line for _, line in self.lines[-40:])


def _drain(stream: IO[str], into: list[tuple[float, str]]) -> None:
    for line in stream:
        into.append((time.monotonic(), line))


def refresh_cli(config: Path, home: Path, kill_after: float | None = None) -> Run:
    """``marc-batch refresh``; SIGKILLed (the CLI process alone) after ``kill_after`` s."""
    began = time.monotonic()
    process = start(config, home_env(home))
    lines: list[tuple[float, str]] = []
    readers = [
        threading.Thread(target=_drain, args=(process.stderr, lines), daemon=True),
        threading.Thread(target=_drain, args=(process.stdout, []), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=RUN_TIMEOUT if kill_after is None else kill_after)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for reader in readers:
        reader.join(timeout=30)
    return Run(process.returncode, began, time.monotonic() - began, lines)


def state_after(store: Store, before: tuple[list[int], dict[str, int]], stray: set[str]) -> str:
    """How far a killed run got: published, committed, staged or before anything."""
    versions, channels = published(store)
    if channels.get("latest") != before[1].get("latest"):
        return "published (channel moved)"
    if len(versions) > len(before[0]):
        return "committed (manifest, channel not moved)"
    if set(stray_files(store)) - stray:
        return "staged (checkpoints or data files only)"
    return "before anything"


def partial_views(config: Path, store: Store, reference: Store, checked: set[int]) -> list[str]:
    """What a reader could see that is not a whole snapshot equal to the reference's."""
    problems = []
    for version in set(store.versions()) - checked:
        try:
            check_snapshot(store, store.manifest(version))
            checked.add(version)
        except AssertionError as error:
            problems.append(f"version {version}: {error}")
    validate = [sys.executable, "-m", "marc_batch", "snapshots", "validate"]
    for channel in list_channels(store.backend):
        done = subprocess.run(
            [*validate, channel, "--config", str(config), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0 or not json.loads(done.stdout)["ok"]:
            problems.append(f"validate {channel}: {done.stdout[-500:]}{done.stderr[-500:]}")
    read = subprocess.run(
        [sys.executable, "-c", READER, str(config)], capture_output=True, text=True, timeout=120
    )
    if read.returncode != 0:
        problems.append(f"reader: {read.stderr[-1000:]}")
    else:
        for entity, seen in json.loads(read.stdout)["entities"].items():
            if seen["rows"] != seen["expected"] or not seen["conserved"]:
                problems.append(f"reader: {entity} {seen}")
    if not same_content(store, reference):
        problems.append("latest differs from an uninterrupted run")
    return problems


@pytest.mark.skipif(KILLS < 1, reason="set MARC_BATCH_KILL_CAMPAIGN (make reliability: 25)")
def test_random_kill_campaign(
    tmp_path: Path, registry: Path, reference: dict[str, Store], ledger: Ledger
) -> None:
    settings = config_for(tmp_path, registry)
    config, store, home = config_file(tmp_path, settings), Store(settings.store), tmp_path / "home"
    clean = reference["initial"]
    rng = random.Random(SEED)
    first = refresh_cli(config, home)
    assert first.code == 0, first.tail()
    typical = first
    states: Counter[str] = Counter()
    runs, partial, lost, checked = [first], [], 0, set()
    final: Run | None = None
    try:
        while sum(states.values()) < KILLS:
            assert len(runs) <= 3 * KILLS + 1, "kills keep missing: the runs end too soon"
            before, stray = published(store), set(stray_files(store))
            began, ended = typical.window()
            moment = rng.uniform(0.05 * ended if rng.random() < ANYWHERE else began, ended)
            run = refresh_cli(config, home, kill_after=moment)
            runs.append(run)
            assert run.killed or run.code == 0, run.tail()
            if not run.killed:  # it finished first; warm runs set the window from now on
                typical = min(typical, run, key=lambda r: r.seconds)
            assert no_server_left(home), "a killed command's ephemeral server outlived it"
            if run.killed:
                states[state_after(store, before, stray)] += 1
            partial += partial_views(config, store, clean, checked)
            lost += rows_lost(store, clean)
            print(f"run {len(runs) - 1}: {run.code} after {run.seconds:.1f} s, {dict(states)}")
        final = refresh_cli(config, home)
        runs.append(final)
        assert final.code == 0, final.tail()
        assert same_content(store, clean)
        lost += rows_lost(store, clean)
    finally:
        waits = [run.slot_wait() for run in runs if run.slot_wait()]
        leaked = [r for r in runs if r.gave_up_on_slot() or r.slot_wait() > LEAK_SECONDS]
        finished = [r for r in runs[1:] if r.code == 0]
        ledger(
            "campaign",
            seed=SEED,
            kills=sum(states.values()),
            states=dict(states),
            runs=len(runs),
            typical_seconds=round(typical.seconds, 1),
            flow_began_at=round(typical.window()[0], 1),
            reruns_finished=len(finished),
            reruns_failed=sum(1 for r in runs[1:] if not r.killed and r.code != 0),
            final_finished=final is not None and final.code == 0,
            rows_lost=lost,
            partial_visible=len(partial),
            slot_waits=len(waits),
            longest_slot_wait=round(max(waits, default=0.0), 1),
            leaked_slots=len(leaked),
            wall_seconds=round(sum(r.seconds for r in runs), 1),
        )
    assert partial == [], partial
    assert lost == 0
    assert leaked == [], [r.tail() for r in leaked]
