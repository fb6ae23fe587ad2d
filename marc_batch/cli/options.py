"""Options every command shares, so that all commands behave the same way."""

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML or YAML config; MARC_BATCH_* variables override it."),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object instead of a report.")
]
