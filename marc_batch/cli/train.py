"""``marc-batch train``: train MARC on the configured data and register the version."""

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.model.artifact import save_artifact, staging_dir
from marc_batch.model.registry import Registry
from marc_batch.train.recipe import prepare, train_variant
from marc_batch.train.trainer import progress_bar


def train_command(
    config: ConfigOption = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint after every epoch here (resumable).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Train the MARC encoder, save it as a verified artifact and make it current."""
    settings = load_config(config)
    registry = Registry(Path(settings.model.registry))
    with progress_bar() as progress:
        prepared = prepare(settings, progress)
    encoder, _, result = train_variant(prepared, settings.model, checkpoint_dir, resume)
    staged = staging_dir(registry.root)
    try:
        save_artifact(
            encoder,
            staged,
            base_backbone=settings.model.backbone,
            base_sha256=prepared.base_sha256,
            metrics={
                "valid_auc": round(result.best_valid_auc, 6),
                "best_epoch": result.best_epoch,
                "train_seconds": round(result.seconds, 1),
            },
        )
        version = registry.register(staged)
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)
    summary = {
        "version": version,
        "path": str(registry.path(version)),
        "valid_auc": result.best_valid_auc,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 1),
        "history": result.history,
    }
    if json_output:
        typer.echo(json.dumps(summary))
    else:
        Console().print(
            f"registered {version} (current) at {summary['path']}: validation AUC "
            f"{result.best_valid_auc:.4f} (epoch {result.best_epoch}), "
            f"trained in {result.seconds:.0f} s",
            markup=False,
        )
