"""The backfill: encode only what changed since the published snapshot, during the day."""

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.encoding import encode_on_engine
from flows.outcome import run_step
from flows.parameters import BackfillParameters
from flows.summaries import publish_summary
from marc_batch.pipeline.backfill import BackfillReport, backfill


@flow(name="backfill", log_prints=False)
def backfill_flow(parameters: BackfillParameters | None = None) -> BackfillReport:
    """Diff the catalogue against the newest snapshot, encode the change, commit incrementally."""
    parameters = parameters or BackfillParameters()

    def step() -> BackfillReport:
        return backfill(
            parameters.load(),
            items=parameters.items,
            run_id=flow_run.get_id(),
            encode=encode_on_engine,
            channel=parameters.channel,
        )

    report = run_step(step)
    if not isinstance(report, BackfillReport):
        return report
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
    )
    return report
