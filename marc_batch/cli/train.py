"""``marc-batch train``: train MARC on the configured data and register the version."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.train.register import train_and_register


def train_command(
    config: ConfigOption = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint after every epoch here (resumable).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Train the MARC encoder, save it as a verified artifact and make it current."""
    summary = train_and_register(load_config(config), checkpoint_dir, resume)
    if json_output:
        typer.echo(summary.model_dump_json())
    else:
        Console().print(
            f"registered {summary.version} (current) at {summary.path}: validation AUC "
            f"{summary.valid_auc:.4f} (epoch {summary.best_epoch}), "
            f"trained in {summary.train_seconds:.0f} s",
            markup=False,
        )
