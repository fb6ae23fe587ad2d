"""``marc-batch search``: the nearest items in a published snapshot."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.pipeline.search import search


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
