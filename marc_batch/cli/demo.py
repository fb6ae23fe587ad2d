"""``marc-batch demo``: the whole service on the embedded default, from nothing to neighbours.

First run: train a MARC encoder on MovieLens-100K with the bundled MiniLM
(a short schedule, ``--epochs``), then the nightly refresh. Later runs reuse
the registered model and only refresh. Both steps are the production flows.
"""

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from marc_batch.cli.flows import run_flow
from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.model.registry import Registry
from marc_batch.parameters import RefreshParameters, TrainParameters
from marc_batch.pipeline.refresh import RefreshReport
from marc_batch.pipeline.search import SearchResult, search, titles
from marc_batch.store import Store, open_snapshot


class DemoReport(BaseModel):
    model_version: str
    trained: bool
    refresh: RefreshReport
    examples: list[SearchResult]
    example_titles: list[str | None]
    duckdb: str


def duckdb_one_liner(config_path: Path | None, version: int) -> str:
    """A shell command that opens the snapshot in DuckDB (views ``item`` and ``user``)."""
    load = f"load_config({json.dumps(str(config_path))})" if config_path else "load_config()"
    code = (
        "import marc_batch.store as s; from marc_batch.config import load_config; "
        f's.open_snapshot(s.Store({load}.store), "v{version}").duckdb()'
        '.sql("SELECT id, embedding FROM item LIMIT 5").show()'
    )
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def demo_command(
    config: ConfigOption = None,
    epochs: Annotated[
        int, typer.Option(min=1, help="Training epochs if no model is registered yet.")
    ] = 2,
    example: Annotated[
        list[str] | None,
        typer.Option("--example", help="Item id to show neighbours of (repeatable)."),
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="Neighbours per example.")] = 5,
    json_output: JsonOption = False,
) -> None:
    """Train a model if none is registered, run the nightly refresh, show what it published."""
    settings = load_config(config)
    registry = Registry(Path(settings.model.registry))
    console = Console(stderr=json_output)
    trained = registry.find_current() is None
    if trained:
        console.print(
            f"no registered model in {registry.root}: training MARC ({epochs} epochs), "
            "once; later runs reuse it"
        )
        run_flow(
            "train-model", TrainParameters(config=config, epochs=epochs, compare_baselines=False)
        )
    report = run_flow("nightly-refresh", RefreshParameters(config=config))
    snapshot = open_snapshot(Store(settings.store), str(report.version))
    ids = example or sorted(snapshot.table("item")["id"].to_pylist(), key=_natural)[:3]
    examples = [search(settings, str(report.version), k, item_id=i) for i in ids]
    result = DemoReport(
        model_version=report.model_version,
        trained=trained,
        refresh=report,
        examples=examples,
        example_titles=titles(snapshot, ids),
        duckdb=duckdb_one_liner(config, report.version),
    )
    if json_output:
        typer.echo(result.model_dump_json())
        return
    _print(console, result)


def _natural(identifier: str) -> tuple[int, str]:
    return (int(identifier), "") if identifier.isdigit() else (2**63, identifier)


def _print(console: Console, result: DemoReport) -> None:
    report = result.refresh
    origin = "trained now" if result.trained else "reused"
    console.print(f"model {result.model_version} ({origin})", markup=False)
    console.print(
        f"snapshot {report.snapshot_id}: version {report.version} on '{report.channel}', "
        f"{report.rows['item']} items and {report.rows['user']} users embedded, "
        f"{report.quarantined} rows quarantined",
        markup=False,
    )
    for entity, index in report.indexes.items():
        console.print(
            f"{entity} index {index.factory}: recall@{index.recall_k} {index.recall:.3f} "
            f"(target {index.recall_target})",
            markup=False,
        )
    for found, title in zip(result.examples, result.example_titles, strict=True):
        table = Table(title=f"nearest to item {found.query}: {title}")
        for column in ("rank", "id", "score", "title"):
            table.add_column(column)
        for rank, neighbour in enumerate(found.neighbours, start=1):
            table.add_row(str(rank), neighbour.id, f"{neighbour.score:.3f}", neighbour.title or "")
        console.print(table)
    console.print("query the snapshot with DuckDB:")
    console.print(result.duckdb, markup=False, soft_wrap=True)
