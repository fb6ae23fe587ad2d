"""Validate the catalogue as a Prefect flow, with the report as a flow-run artifact.

The flow holds no logic of its own: it loads the config, calls
:func:`marc_batch.data.ingest.ingest` and publishes what it found, so the same
run can be started from the CLI, a deployment or a test.
"""

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import State

from flows.outcome import run_step
from marc_batch.config import load_config
from marc_batch.data.ingest import IngestReport, ingest


def report_markdown(report: IngestReport) -> str:
    lines = [
        f"## Ingestion {report.run_id}",
        "",
        "| table | rows in | accepted | quarantined | reasons |",
        "|---|---:|---:|---:|---|",
    ]
    for name, entry in report.tables.items():
        reasons = ", ".join(f"{reason} {count}" for reason, count in entry.reasons.items()) or "-"
        lines.append(
            f"| {name} | {entry.rows_in} | {entry.accepted} | {entry.quarantined} | {reasons} |"
        )
    lines += ["", "Split: " + ", ".join(f"{k} {v}" for k, v in report.split.items())]
    lines += [f"Quarantine: `{path}`" for path in report.quarantine_files]
    return "\n".join(lines)


def summarise(report: IngestReport) -> None:
    get_run_logger().info(
        "ingested %d items, %d users, %d interactions; %d rows quarantined",
        report.items,
        report.users,
        report.interactions,
        report.quarantined,
    )
    create_markdown_artifact(
        key="ingest-report", markdown=report_markdown(report), description="Ingestion report"
    )


@flow(name="ingest-catalogue", log_prints=False)
def ingest_catalogue(config_path: Path | None = None) -> IngestReport | State:
    """Validate items, users and interactions; quarantine bad rows; publish the report."""
    return run_step(
        lambda: ingest(load_config(config_path), run_id=flow_run.get_id() or None)[1], summarise
    )
