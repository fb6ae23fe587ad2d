"""The backfill: encode only what changed since the published snapshot, during the day."""

from prefect import flow, get_run_logger
from prefect.states import State

from flows.encoding import run_on_engine
from flows.summaries import publish_summary
from marc_batch.parameters import BackfillParameters
from marc_batch.pipeline.backfill import BackfillReport, backfill


def summarise(report: BackfillReport) -> None:
    changes = {
        entity: f"+{c.added} ~{c.changed} -{c.removed} ={c.unchanged} (quarantined {c.quarantined})"
        for entity, c in report.changes.items()
    }
    outcome = f"version {report.version}" if report.committed else "nothing to do"
    get_run_logger().info("backfill: %s; %s", outcome, changes)
    publish_summary(
        "backfill",
        f"Backfill: {outcome} on '{report.channel}'",
        {
            "parent version": report.parent_version,
            "snapshot": f"`{report.snapshot_id}`",
            **{f"{entity} changes": text for entity, text in changes.items()},
            "live rows": ", ".join(f"{e} {n}" for e, n in report.rows.items()),
        },
        report.encode,
        report.indexes,
        report.statistics,
    )


@flow(name="backfill", log_prints=False)
def backfill_flow(parameters: BackfillParameters | None = None) -> BackfillReport | State:
    """Diff the catalogue against the newest snapshot, encode the change, commit incrementally."""
    parameters = parameters or BackfillParameters()
    return run_on_engine(backfill, parameters, summarise, items=parameters.items)
