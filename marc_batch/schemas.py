"""The published JSON Schemas, generated from the pydantic models they describe.

``schemas/`` is checked in so that consumers can read the contract without
installing the package; ``marc-batch schemas --check`` (run by the tests)
fails when a model changed and the files were not regenerated.
"""

import json
from pathlib import Path

from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.data.ingest import IngestReport
from marc_batch.data.records import InteractionRecord, ItemRecord, QuarantineEntry, UserRecord
from marc_batch.evaluate.report import EvaluationReport
from marc_batch.model.artifact import ArtifactConfig, ArtifactManifest
from marc_batch.store.channels import ChannelPointer
from marc_batch.store.manifest import Manifest

PUBLISHED: dict[str, type[BaseModel]] = {
    "config": Config,
    "item": ItemRecord,
    "user": UserRecord,
    "interaction": InteractionRecord,
    "quarantine-entry": QuarantineEntry,
    "ingest-report": IngestReport,
    "manifest": Manifest,
    "channel-pointer": ChannelPointer,
    "model-artifact-config": ArtifactConfig,
    "model-artifact-manifest": ArtifactManifest,
    "evaluation-report": EvaluationReport,
}


def render() -> dict[str, str]:
    """File name -> JSON text, deterministic so that the check is a plain comparison."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for name, model in PUBLISHED.items()
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [
        name
        for name, text in render().items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
