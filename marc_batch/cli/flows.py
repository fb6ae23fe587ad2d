"""``marc-batch refresh | backfill | demo``: the Prefect flows, run here with an ephemeral server.

The commands run exactly the flows a deployment runs, so a local run shows
up as a flow run with its task runs, logs (the progress, on stderr) and
summary artifact. ``--json`` prints the run's report alone on stdout.
Prefect is imported only when a flow runs, so the other commands start fast.
"""

import os
import signal
import sys
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from marc_batch.cli import reaper
from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.errors import MarcBatchError
from marc_batch.index import IndexReport
from marc_batch.parameters import BackfillParameters, RefreshParameters

if TYPE_CHECKING:  # the pipeline (torch) is imported only when a flow runs
    from marc_batch.pipeline.behaviours import BehaviourCounts

T = TypeVar("T")
FLOWS = "marc_batch.flows"  # the entry-point group pyproject.toml declares the flows in

ModelOption = Annotated[str, typer.Option("--model", help="Model version, or 'current'.")]
ChannelOption = Annotated[
    str | None, typer.Option("--channel", help="Channel to publish to (default: flows.channel).")
]


def _prefect_defaults() -> None:
    """Settings for a local run, before Prefect is first imported (it reads them then).

    Leases on concurrency slots go to files under ``PREFECT_HOME``, so that the
    lease of a run that died outlives its ephemeral server and can be revoked
    by the next run (see ``flows/slots.py``). Batch machines are often
    offline: without the second setting, the ephemeral server logs a failed
    telemetry call as an error on every run. Prefect waits 20 s for its
    ephemeral server; a busy batch machine can need longer. Explicit settings
    in the environment win.
    """
    os.environ.setdefault(
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE",
        "prefect.server.concurrency.lease_storage.filesystem",
    )
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _terminate(signum: int, _frame: object) -> None:
    """End the run now, as a crash would: what it committed stands, the rest is re-done.

    Waiting for Prefect to wind down would wait for shards still encoding or
    waiting for a slot; a run told to stop must stop. Its slot's lease lapses
    within ``flows.slot_lease_seconds``, and the watchdog stops its server.
    """
    sys.stderr.write(f"error: stopped by signal {signum}; re-run to finish the job\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def _in_thread(call: Callable[[], T]) -> T:
    """``call()`` on a worker thread, while the main thread stays free to take signals.

    Run on the main thread, a flow installs Prefect's own SIGTERM handler,
    which unwinds the flow and then waits for every task thread, including
    one waiting an hour for a slot; :func:`_terminate` must run instead.
    """
    outcome: list = []

    def target() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the main thread as it is
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name="flow-run", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def run_flow(name: str, parameters: BaseModel) -> Any:
    """Run the installed flow ``name`` to completion, as a deployment would.

    A failed run becomes one ``error:`` line, a bug a traceback. The flow is
    found by its entry point, so the library never imports the flows package.
    """
    _prefect_defaults()
    reaper.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _terminate)
    found = entry_points(group=FLOWS, name=name)
    if not found:
        raise MarcBatchError(f"flow {name!r} is not installed; reinstall marc-batch (make install)")
    flow = next(iter(found)).load()
    state = _in_thread(lambda: flow(parameters, return_state=True))
    if state.is_completed():
        return state.result()
    failure = state.result(raise_on_failure=False)
    if isinstance(failure, BaseException) and not isinstance(failure, MarcBatchError):
        raise failure
    raise MarcBatchError(state.message or f"flow run ended in state {state.type.value}")


def _print_indexes(console: Console, indexes: dict[str, IndexReport]) -> None:
    for entity, index in indexes.items():
        console.print(
            f"{entity} index: {index.factory}, recall@{index.recall_k} {index.recall:.3f} "
            f"(target {index.recall_target}), built in {index.build_seconds:.1f} s",
            markup=False,
        )


def _print_encode(console: Console, encode: dict[str, dict[str, float]]) -> None:
    for entity, stats in encode.items():
        console.print(
            f"{entity}: {stats['texts']:.0f} texts, {stats['texts_per_second']:.0f} texts/s, "
            f"{stats['tokens_per_second']:.0f} tokens/s, padding {stats['padding_ratio']:.1%}"
        )


def _print_behaviours(console: Console, counts: "BehaviourCounts | None") -> None:
    """A BAHE model's run: how many distinct behaviours the store already held."""
    if counts is not None:
        console.print(
            f"behaviours: {counts.distinct} distinct, {counts.reused} from the store, "
            f"{counts.encoded} encoded"
        )


def refresh_command(
    config: ConfigOption = None,
    model: ModelOption = "current",
    channel: ChannelOption = None,
    json_output: JsonOption = False,
) -> None:
    """Re-encode every item and user, write a snapshot, index it and move the channel."""
    parameters = RefreshParameters(config=config, model_version=model, channel=channel)
    report = run_flow("nightly-refresh", parameters)
    if json_output:
        typer.echo(report.model_dump_json())
        return
    console = Console()
    console.print(
        f"published version {report.version} ({report.snapshot_id}) to '{report.channel}' "
        f"with model {report.model_version}: {report.rows['item']} items, "
        f"{report.rows['user']} users, {report.quarantined} rows quarantined",
        markup=False,
    )
    _print_encode(console, report.encode)
    _print_behaviours(console, report.behaviours)
    _print_indexes(console, report.indexes)


def backfill_command(
    config: ConfigOption = None,
    items: Annotated[
        Path | None,
        typer.Option(
            "--items",
            help="A .parquet or .csv file of new or changed items (default: diff the whole "
            "configured catalogue, deletions included).",
        ),
    ] = None,
    channel: ChannelOption = None,
    json_output: JsonOption = False,
) -> None:
    """Encode only new and changed rows and publish them as an incremental snapshot."""
    report = run_flow("backfill", BackfillParameters(config=config, items=items, channel=channel))
    if json_output:
        typer.echo(report.model_dump_json())
        return
    console = Console()
    table = Table(title=f"backfill on '{report.channel}' from version {report.parent_version}")
    for column in ("entity", "rows in", "added", "changed", "removed", "unchanged", "quarantined"):
        table.add_column(column, justify="left" if column == "entity" else "right")
    for entity, change in report.changes.items():
        table.add_row(
            entity,
            *(
                str(value)
                for value in (
                    change.rows_in,
                    change.added,
                    change.changed,
                    change.removed,
                    change.unchanged,
                    change.quarantined,
                )
            ),
        )
    console.print(table)
    if not report.committed:
        console.print(f"nothing changed; '{report.channel}' stays at version {report.version}")
        return
    console.print(
        f"published version {report.version} ({report.snapshot_id}): "
        + ", ".join(f"{entity} {rows}" for entity, rows in report.rows.items()),
        markup=False,
    )
    _print_encode(console, report.encode)
    _print_behaviours(console, report.behaviours)
    _print_indexes(console, report.indexes)
