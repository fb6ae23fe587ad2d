"""``marc-batch evaluate``: score MARC and the baselines; write the report and plots."""

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.evaluate.report import render_markdown, write_report
from marc_batch.evaluate.run import evaluate
from marc_batch.train.trainer import progress_bar


def evaluate_command(
    out: Annotated[Path, typer.Option(help="Directory for report.json, report.md and plots.")],
    config: ConfigOption = None,
    model: Annotated[str, typer.Option(help="Registered version to evaluate.")] = "current",
    lift_only: Annotated[
        bool,
        typer.Option(
            help="Train nothing: score the lift of pca-final, pca-best-mid and the registered "
            "model only, without the frozen-z table and the layer probe."
        ),
    ] = False,
    mid_layer: Annotated[
        int | None,
        typer.Option(
            help="With --lift-only: pca-best-mid's layer, as chosen on validation by an earlier "
            "run on the same backbone and data (default: choose it again on validation)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Train the baselines, score all five methods over seeds and their lift, probe every layer."""
    settings = load_config(config)
    command = shlex.join(["marc-batch", *sys.argv[1:]])
    with progress_bar() as progress:
        report = evaluate(settings, model, command, progress, lift_only, mid_layer)
    paths = write_report(report, out)
    if json_output:
        typer.echo(report.model_dump_json())
    else:
        Console().print(render_markdown(report), markup=False)
        for path in paths:
            Console().print(f"wrote {path}", markup=False)
