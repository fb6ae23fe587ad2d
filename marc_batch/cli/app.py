"""The command-line entry point and its error convention.

Every command takes ``--config`` (and ``--json`` where it reports), exits 0
on success, and on a user error prints one line, ``error: ...``, to stderr
and exits 1. Anything else is a bug and keeps its traceback.
"""

import sys

import typer

from marc_batch.cli.demo import demo_command
from marc_batch.cli.evaluate import evaluate_command
from marc_batch.cli.flows import backfill_command, refresh_command
from marc_batch.cli.ingest import ingest_command
from marc_batch.cli.schemas import schemas_command
from marc_batch.cli.search import search_command
from marc_batch.cli.snapshots import snapshots_app
from marc_batch.cli.train import train_command
from marc_batch.errors import MarcBatchError

app = typer.Typer(
    name="marc-batch",
    help="Offline embedding batch service: MARC embeddings as Parquet snapshots and FAISS indexes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("ingest")(ingest_command)
app.command("schemas")(schemas_command)
app.command("refresh")(refresh_command)
app.command("backfill")(backfill_command)
app.command("search")(search_command)
app.add_typer(snapshots_app, name="snapshots")
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("demo")(demo_command)


def main() -> None:
    try:
        app()
    except MarcBatchError as exc:
        message = " ".join(str(exc).split())
        typer.echo(f"error: {message}", err=True)
        sys.exit(1)
