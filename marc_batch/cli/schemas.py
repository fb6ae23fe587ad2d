"""``marc-batch schemas``: regenerate the published JSON Schemas, or check them."""

from pathlib import Path
from typing import Annotated

import typer

from marc_batch import schemas
from marc_batch.errors import MarcBatchError


def schemas_command(
    out: Annotated[Path, typer.Option(help="Directory of the schema files.")] = Path("schemas"),
    check: Annotated[bool, typer.Option(help="Fail if the files differ from the models.")] = False,
) -> None:
    """Write (or with --check, verify) the JSON Schemas of records, config and reports."""
    if check:
        names = schemas.stale(out)
        if names:
            raise MarcBatchError(
                f"stale schemas in {out}: {', '.join(names)}; run 'marc-batch schemas'"
            )
        typer.echo(f"schemas in {out} are up to date")
        return
    for path in schemas.write(out):
        typer.echo(f"wrote {path}")
