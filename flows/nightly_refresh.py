"""The nightly refresh: every item and user re-encoded with the current model, then published.

The library does the work (:func:`marc_batch.pipeline.refresh.refresh`);
this flow chooses where the shards run, names the run, and leaves a summary
artifact. A failed run leaves its finished shards checkpointed in the store,
so running it again (or retrying it from the UI) encodes only the rest.
"""

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.encoding import encode_on_engine
from flows.outcome import run_step
from flows.parameters import RefreshParameters
from flows.summaries import publish_summary
from marc_batch.pipeline.refresh import RefreshReport, refresh


@flow(name="nightly-refresh", log_prints=False)
def nightly_refresh(parameters: RefreshParameters | None = None) -> RefreshReport:
    """Re-encode the catalogue, write a snapshot, prove its indexes, validate, promote."""
    parameters = parameters or RefreshParameters()

    def step() -> RefreshReport:
        config = parameters.load()
        return refresh(
            config,
            model_version=parameters.model_version,
            run_id=flow_run.get_id(),
            encode=encode_on_engine,
            channel=parameters.channel,
        )

    report = run_step(step)
    if not isinstance(report, RefreshReport):
        return report
    get_run_logger().info(
        "published version %d (%s) to %r: %s",
        report.version,
        report.snapshot_id,
        report.channel,
        report.rows,
    )
    publish_summary(
        "nightly-refresh",
        f"Refresh: version {report.version} on '{report.channel}'",
        {
            "snapshot": f"`{report.snapshot_id}`",
            "model": f"`{report.model_version}`",
            "rows": ", ".join(f"{e} {n}" for e, n in report.rows.items()),
            "quarantined": report.quarantined,
        },
        report.encode,
        report.indexes,
    )
    return report
