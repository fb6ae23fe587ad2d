"""``marc-batch ingest``: validate the sources, write quarantine, report."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.data.ingest import IngestReport, ingest


def render_report(report: IngestReport, console: Console) -> None:
    """The human view of an ingestion report."""
    table = Table(title=f"ingestion {report.run_id}")
    for column in ("table", "rows in", "accepted", "quarantined", "reasons"):
        table.add_column(column, justify="left" if column in ("table", "reasons") else "right")
    for name, entry in report.tables.items():
        reasons = ", ".join(f"{reason} {count}" for reason, count in entry.reasons.items())
        table.add_row(
            name, str(entry.rows_in), str(entry.accepted), str(entry.quarantined), reasons or "-"
        )
    console.print(table)
    split = ", ".join(f"{name} {count}" for name, count in report.split.items())
    console.print(f"split: {split}; positive rate {report.positive_rate:.1%}")
    for name, texts in report.texts.items():
        console.print(
            f"{name} texts: {texts.count}, mean {texts.mean_chars:.0f} chars, "
            f"max {texts.max_chars}; e.g. {texts.example[:160]!r}",
            markup=False,
        )
    for path in report.quarantine_files:
        console.print(f"quarantine: {path}", markup=False)


def ingest_command(
    config: ConfigOption = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="'ml-100k' (embedded) or a MovieLens directory; replaces all sources."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Validate items, users and interactions; quarantine bad rows with a reason."""
    settings = load_config(config)
    if dataset is not None:
        sources = settings.sources.model_copy(
            update={"dataset": dataset, "items": None, "users": None, "interactions": None}
        )
        settings = settings.model_copy(update={"sources": sources})
    _, report = ingest(settings)
    if json_output:
        typer.echo(report.model_dump_json())
    else:
        render_report(report, Console())
