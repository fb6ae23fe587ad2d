"""``marc-batch refresh`` and ``marc-batch search``: publish a snapshot, then query it."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.pipeline.refresh import refresh
from marc_batch.pipeline.search import search


def refresh_command(
    config: ConfigOption = None,
    model: Annotated[str, typer.Option(help="Model version, or 'current'.")] = "current",
    json_output: JsonOption = False,
) -> None:
    """Re-encode every item and user, write a snapshot, index it and move the channel."""
    report = refresh(load_config(config), model_version=model)
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
    for entity, stats in report.encode.items():
        console.print(
            f"{entity}: {stats['texts_per_second']:.0f} texts/s, "
            f"{stats['tokens_per_second']:.0f} tokens/s, padding {stats['padding_ratio']:.1%}"
        )
    for entity, index in report.indexes.items():
        console.print(
            f"{entity} index: {index.factory}, recall@{index.recall_k} {index.recall:.3f} "
            f"(target {index.recall_target}), built in {index.build_seconds:.1f} s",
            markup=False,
        )


def search_command(
    config: ConfigOption = None,
    item_id: Annotated[str | None, typer.Option("--id", help="An item id in the snapshot.")] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Free text, encoded by the snapshot's model.")
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="Neighbours to list.")] = 10,
    channel: Annotated[str, typer.Option(help="Channel to read.")] = "latest",
    snapshot: Annotated[
        str | None, typer.Option(help="Version or snapshot id (beats --channel).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The nearest items to an item or a text in a published snapshot."""
    result = search(load_config(config), snapshot or channel, k, item_id=item_id, text=text)
    if json_output:
        typer.echo(result.model_dump_json())
        return
    table = Table(title=f"neighbours of {result.query!r} in version {result.version}")
    for column in ("rank", "id", "score", "title"):
        table.add_column(column)
    for rank, neighbour in enumerate(result.neighbours, start=1):
        table.add_row(str(rank), neighbour.id, f"{neighbour.score:.3f}", neighbour.title or "")
    Console().print(table)
