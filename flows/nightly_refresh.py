"""The nightly refresh: every item and user re-encoded with the current model, then published.

The library does the work (:func:`marc_batch.pipeline.refresh.refresh`);
this flow chooses where the shards are encoded and indexed, names the run,
and leaves a summary artifact. A failed run leaves its finished shards
checkpointed in the store, so running it again (or retrying it from the
UI) encodes only the rest.
"""

from prefect import flow, get_run_logger
from prefect.states import State

from flows.encoding import run_on_engine
from flows.indexing import index_on_engine
from flows.summaries import publish_summary
from marc_batch.parameters import RefreshParameters
from marc_batch.pipeline.refresh import RefreshReport, refresh


def summarise(report: RefreshReport) -> None:
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
        report.statistics,
        report.compatibility,
    )


@flow(name="nightly-refresh", log_prints=False)
def nightly_refresh(parameters: RefreshParameters | None = None) -> RefreshReport | State:
    """Re-encode the catalogue, write a snapshot, prove its indexes, validate, promote."""
    parameters = parameters or RefreshParameters()
    return run_on_engine(
        refresh,
        parameters,
        summarise,
        model_version=parameters.model_version,
        index_shards=index_on_engine,
    )
