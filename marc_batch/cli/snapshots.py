"""``marc-batch snapshots ...``: inspect, verify, promote, roll back and clean the store."""

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from marc_batch.cli.options import ConfigOption, JsonOption
from marc_batch.config import load_config
from marc_batch.entities import ENTITIES
from marc_batch.pipeline.publish import promote_new, publish, rollback, verified
from marc_batch.store import channels
from marc_batch.store.attachments import statistics_between
from marc_batch.store.compact import compact
from marc_batch.store.diff import diff
from marc_batch.store.gc import collect_garbage
from marc_batch.store.history import MEMORY_LIMIT, export_history
from marc_batch.store.statistics import summary_lines
from marc_batch.store.store import Store
from marc_batch.store.validate import validate

snapshots_app = typer.Typer(
    help="Inspect, verify, promote, roll back and garbage-collect embedding snapshots.",
    no_args_is_help=True,
)

RootOption = Annotated[
    str | None,
    typer.Option("--root", help="Store root (directory or s3:// URI); overrides config."),
]
RefArgument = Annotated[str, typer.Argument(help="Version number, snapshot id or channel name.")]
ChannelOption = Annotated[str, typer.Option("--channel", help="Channel to move.")]


class HistoryEntity(StrEnum):
    ITEM = "item"
    USER = "user"
    ALL = "all"


def _store(config: ConfigOption, root: str | None) -> Store:
    settings = load_config(config).store
    if root is not None:
        settings = settings.model_copy(update={"root": root})
    return Store(settings)


def _emit(payload: Any) -> None:
    typer.echo(json.dumps(payload, default=str, sort_keys=True))


@snapshots_app.command("list")
def list_command(
    config: ConfigOption = None, root: RootOption = None, json_output: JsonOption = False
) -> None:
    """Every retained version, oldest first, with the channels that point at it."""
    store = _store(config, root)
    pointers = channels.list_channels(store.backend)
    rows = []
    for version in store.versions():
        manifest = store.manifest(version)
        rows.append(
            {
                "version": version,
                "snapshot_id": manifest.snapshot_id,
                "created_at": manifest.created_at.isoformat(),
                "operation": manifest.operation,
                "model": manifest.model.version,
                "k": manifest.k,
                "rows": manifest.rows,
                "channels": [n for n, p in pointers.items() if p.version == version],
            }
        )
    if json_output:
        _emit(rows)
        return
    table = Table(title=f"snapshots in {store.backend.uri}")
    for column in ("version", "created", "operation", "model", "k", "rows", "channels"):
        table.add_column(column)
    for row in rows:
        counts = ", ".join(f"{e} {n}" for e, n in row["rows"].items())
        table.add_row(
            str(row["version"]),
            row["created_at"][:19],
            row["operation"],
            row["model"],
            str(row["k"]),
            counts,
            ", ".join(row["channels"]),
        )
    Console().print(table)


@snapshots_app.command("show")
def show_command(
    ref: RefArgument = "latest",
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """The manifest of one version."""
    manifest = _store(config, root).resolve(ref)
    if json_output:
        typer.echo(manifest.model_dump_json())
        return
    parent = manifest.parent_version or "-"
    typer.echo(
        f"version {manifest.version} ({manifest.snapshot_id}), parent {parent}, "
        f"{manifest.operation}, created {manifest.created_at:%Y-%m-%d %H:%M:%S}Z"
    )
    typer.echo(
        f"model {manifest.model.version}, k={manifest.k}, {manifest.dtype}, "
        f"normalization {manifest.normalization}, run {manifest.run_id or '-'}"
    )
    for entity, count in manifest.rows.items():
        files = manifest.data_files(entity) + manifest.data_files(entity, "deletes")
        size = sum(f.size for f in files)
        typer.echo(f"{entity}: {count} rows in {len(files)} files, {size} bytes")
    for index in manifest.indexes:
        typer.echo(f"index {index.path}: {index.index_type}, {index.rows} vectors")


@snapshots_app.command("diff")
def diff_command(
    old: Annotated[str, typer.Argument(help="The earlier version, id or channel.")],
    new: Annotated[str, typer.Argument(help="The later version, id or channel.")],
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Ids added, removed and changed (text or embedding) between two versions, and how far
    the vectors moved: cosine of unchanged texts, neighbour overlap@10, the alignment map.

    The statistics are the ones NEW recorded when OLD is its parent, else computed now.
    """
    store = _store(config, root)
    before, after = store.resolve(old), store.resolve(new)
    result: dict[str, Any] = diff(store, before, after)
    figures = statistics_between(store, before, after)
    if json_output:
        _emit({**result, "statistics": figures})
        return
    for entity, parts in result.items():
        summary = ", ".join(f"{what} {len(ids)}" for what, ids in parts.items())
        typer.echo(f"{entity}: {summary}")
        for what, ids in parts.items():
            if ids:
                more = f" (+{len(ids) - 5} more)" if len(ids) > 5 else ""
                typer.echo(f"  {what}: {', '.join(ids[:5])}{more}")
    origin = f"recorded with version {after.version}" if figures["recorded"] else "computed"
    typer.echo(f"statistics ({origin}):")
    for line in summary_lines(figures):
        typer.echo(f"  {line}")


@snapshots_app.command("validate")
def validate_command(
    ref: RefArgument = "latest",
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Re-read every file: sizes, sha256, page checksums, schemas and row counts."""
    store = _store(config, root)
    manifest = store.resolve(ref)
    if json_output:
        problems = validate(store, manifest)
        _emit({"version": manifest.version, "ok": not problems, "problems": problems})
        if problems:
            raise typer.Exit(1)
        return
    verified(store, manifest)
    typer.echo(f"version {manifest.version}: {len(manifest.files)} files intact")


def _report_channel(name: str, version: int, json_output: bool) -> None:
    if json_output:
        _emit({"channel": name, "version": version})
    else:
        typer.echo(f"{name} -> version {version}")


@snapshots_app.command("promote")
def promote_command(
    ref: RefArgument,
    channel: ChannelOption = "prod",
    expect: Annotated[
        int | None, typer.Option(help="Only if the channel still points at this version.")
    ] = None,
    allow_incompatible: Annotated[
        bool,
        typer.Option(
            help="Publish another model's vectors to a protected channel even if the ranking "
            "team's CTR model was not shown to keep its lift on them."
        ),
    ] = False,
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify a version, then point a channel at it (compare-and-swap).

    A protected channel (evaluate.compatibility.protected_channels) takes a
    snapshot of another model version only if its compatibility record passed.
    """
    settings = load_config(config)
    protected = [] if allow_incompatible else settings.evaluate.compatibility.protected_channels
    target = publish(_store(config, root), ref, channel, expect, protected)
    _report_channel(channel, target.version, json_output)


@snapshots_app.command("rollback")
def rollback_command(
    channel: ChannelOption = "prod",
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Point a channel back at the version it pointed at before, once that one is verified."""
    target = rollback(_store(config, root), channel)
    _report_channel(channel, target.version, json_output)


@snapshots_app.command("gc")
def gc_command(
    keep: Annotated[int | None, typer.Option(help="Newest versions to keep.")] = None,
    grace_seconds: Annotated[
        float | None, typer.Option(help="Leave unreferenced files younger than this.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Report, delete nothing.")] = False,
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Expire old versions and delete files no retained version refers to."""
    report = collect_garbage(_store(config, root), keep, grace_seconds, dry_run)
    if json_output:
        _emit(asdict(report))
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"kept versions {report.kept_versions}; expired {report.expired_versions}; "
        f"{verb} {len(report.deleted_files)} files ({report.freed_bytes} bytes)"
    )


@snapshots_app.command("compact")
def compact_command(
    channel: Annotated[
        str, typer.Option(help="Channel to move to the compacted version, once verified.")
    ] = "latest",
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rewrite the head's layers into fresh files as a new version (content unchanged)."""
    store = _store(config, root)
    manifest = compact(store, channel)
    promote_new(store, manifest, channel)
    if json_output:
        _emit({"version": manifest.version, "files": len(manifest.files)})
    else:
        typer.echo(f"version {manifest.version}: {len(manifest.files)} files")


@snapshots_app.command("export-history")
def export_history_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="A .parquet file (every entity in one) or a directory (<entity>.parquet each).",
        ),
    ],
    entity: Annotated[
        HistoryEntity, typer.Option(help="Which entity's history to export.")
    ] = HistoryEntity.ALL,
    since: Annotated[
        str | None, typer.Option(help="First version to export (number, snapshot id, channel).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last version to export; its live rows stay open.")
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(help="Only the versions committed for this channel (default: every version)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the output if it exists.")] = False,
    memory_limit: Annotated[
        str, typer.Option(help="DuckDB's working memory (e.g. 512MB, 4GB); it spills past it.")
    ] = MEMORY_LIMIT,
    verify: Annotated[
        bool, typer.Option(help="Also check every data file's size and sha256.")
    ] = False,
    config: ConfigOption = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every vector with the interval it was live in (valid_from, valid_to), for as-of joins."""
    entities = list(ENTITIES) if entity is HistoryEntity.ALL else [entity.value]
    report = export_history(
        _store(config, root),
        out,
        entities,
        since=since,
        until=until,
        channel=channel,
        overwrite=overwrite,
        memory_limit=memory_limit,
        verify=verify,
    )
    if json_output:
        _emit(asdict(report))
        return
    first, last = report.versions[0], report.versions[-1]
    for path, count in report.files.items():
        typer.echo(f"{path}: {count} intervals over versions {first}..{last}")
