"""The manifest: the one JSON document that defines a snapshot.

A snapshot is exactly the files its manifest lists, each with its size and
sha256; nothing else in the store is part of it. Data files carry the
sequence number (the version that added them) so that an incremental
snapshot can reference its parent's files: when an id appears in several
files, the row from the file with the highest sequence wins, and a deletes
file removes ids from every file of a lower sequence.
"""

import json
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from marc_batch.config.loader import describe_validation_error
from marc_batch.entities import Entity
from marc_batch.errors import ManifestError
from marc_batch.naming import CHANNEL_NAME
from marc_batch.store.paths import check_relative

FORMAT_VERSION = 1


def _relative(path: str) -> str:
    try:
        return check_relative(path)
    except ManifestError as exc:
        raise ValueError(str(exc)) from None


RelativePath = Annotated[
    str,
    AfterValidator(_relative),
    Field(description="Relative to the store root, '/'-separated; never absolute, never '..'."),
]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Dtype = Literal["float32", "float16"]


class DataFile(BaseModel):
    """One Parquet file of rows (``kind='rows'``) or of deleted ids (``kind='deletes'``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: RelativePath
    kind: Literal["rows", "deletes"] = "rows"
    entity: Entity
    shard: int = Field(0, ge=0)
    rows: int = Field(ge=0)
    size: int = Field(ge=0)
    sha256: Sha256
    sequence: int = Field(ge=1, description="Version of the snapshot that added this file.")
    id_min: str | None = Field(None, description="Smallest id in the file (UTF-8 byte order).")
    id_max: str | None = Field(None, description="Largest id in the file, for pruning lookups.")

    def may_contain(self, low: str, high: str) -> bool:
        """False only if no id in [low, high] can be in this file."""
        if self.id_min is None or self.id_max is None:
            return True
        return self.id_min <= high and low <= self.id_max


class IndexFile(BaseModel):
    """A FAISS index over one entity's embeddings, readable with plain ``faiss.read_index``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: RelativePath
    entity: Entity
    index_type: str = Field(description="FAISS factory string, e.g. 'Flat' or 'IVF1024,PQ16'.")
    metric: Literal["inner_product", "l2"]
    rows: int = Field(ge=0)
    size: int = Field(ge=0)
    sha256: Sha256


class BehaviourFile(BaseModel):
    """A Parquet file of BAHE behaviour vectors of the snapshot's model, keyed by text hash.

    Not rows of an entity: a cache of the lower layers' output that a later run of
    the same model reads instead of encoding those behaviours again
    (:mod:`marc_batch.store.behaviours`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: RelativePath
    rows: int = Field(ge=0)
    dim: int = Field(ge=1, description="Width of a behaviour vector (the backbone's hidden size).")
    size: int = Field(ge=0)
    sha256: Sha256


class ModelArtifact(BaseModel):
    """The encoder that produced the embeddings; all rows of a snapshot share it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    sha256: Sha256 | None = Field(None, description="Hash of the model artifact's weights.")


class Conservation(BaseModel):
    """Where the rows of one entity that a run read went: every one embedded or quarantined."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows_in: int = Field(ge=0, description="Input rows the run read for this entity.")
    embedded: int = Field(ge=0, description="Rows live in the snapshot with a current embedding.")
    quarantined: int = Field(ge=0, description="Rows refused, each with a quarantine reason.")

    @model_validator(mode="after")
    def _balanced(self) -> "Conservation":
        if self.rows_in != self.embedded + self.quarantined:
            raise ValueError(
                f"rows_in ({self.rows_in}) must equal embedded ({self.embedded}) + "
                f"quarantined ({self.quarantined})"
            )
        return self


class AttachedFile(BaseModel):
    """A JSON or safetensors file recorded with a snapshot: statistics, an alignment map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: RelativePath
    size: int = Field(ge=0)
    sha256: Sha256


class AlignmentFiles(BaseModel):
    """The map from this snapshot's model space into its parent's (``marc_batch.store.alignment``).

    Published by a refresh whose model version differs from its parent's,
    fitted on the ids both hold with the same text: ``weights`` holds the
    maps (safetensors), ``metadata`` their models, widths, fitting ids and
    residuals (JSON).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_model: str = Field(min_length=1, description="This snapshot's model version.")
    to_model: str = Field(min_length=1, description="The model version it maps into.")
    to_version: int = Field(ge=1, description="The snapshot whose space it maps into.")
    weights: AttachedFile
    metadata: AttachedFile


class CompatibilityRecord(BaseModel):
    """How the ranking team's CTR model trained on an earlier model's vectors scores these.

    Written when a refresh runs another model version than its parent
    snapshot's (``marc_batch.evaluate.compatibility``); a protected channel
    takes the snapshot over one serving ``previous_model`` only if
    ``figures['compatible']`` holds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    previous_version: int = Field(ge=1, description="The snapshot whose vectors it was trained on.")
    previous_model: str = Field(min_length=1, description="That snapshot's model version.")
    figures: dict[str, float | bool | str | None] = Field(
        description="AUCs and kept lift per input; None where undefined (no lift to keep)."
    )


class Manifest(BaseModel):
    """A committed snapshot: immutable once written, named by ``version`` and ``snapshot_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[1] = FORMAT_VERSION
    snapshot_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    version: int = Field(ge=1)
    parent_version: int | None = Field(None, ge=1)
    parent_snapshot_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    created_at: datetime
    run_id: str | None = Field(None, description="The Prefect flow run that produced it.")
    channel: str | None = Field(
        None,
        pattern=CHANNEL_NAME.pattern,
        description="The channel the run that committed it publishes to: a re-run of that "
        "run publishes it if the run died before it could.",
    )
    operation: Literal["overwrite", "incremental", "compaction"] = Field(
        description="overwrite: all rows new; incremental: parent's files plus changes; "
        "compaction: the parent's live rows rewritten, content unchanged."
    )
    model: ModelArtifact
    k: int = Field(ge=1, le=65_536)
    dtype: Dtype
    normalization: Literal["none", "l2"]
    rows: dict[Entity, int] = Field(description="Live rows per entity after merging all files.")
    files: list[DataFile]
    indexes: list[IndexFile] = Field(default_factory=list)
    quarantine: dict[str, int] = Field(
        default_factory=dict, description="Quarantined input rows per reason."
    )
    quality: dict[str, float] = Field(
        default_factory=dict, description="Quality metrics, e.g. index recall@10."
    )
    conservation: dict[Entity, Conservation] = Field(
        default_factory=dict,
        description="Per entity, the run's rows in = embedded + quarantined, checked before "
        "the commit. Written by refresh and backfill; empty for compactions and for "
        "manifests written before it was recorded.",
    )
    compatibility: CompatibilityRecord | None = Field(
        None, description="Set when the run changed the model version; see CompatibilityRecord."
    )
    statistics: AttachedFile | None = Field(
        None,
        description="JSON statistics of the vectors and their drift from the parent "
        "(marc_batch.store.statistics); written by refresh, backfill and compaction.",
    )
    alignment: AlignmentFiles | None = Field(
        None, description="Set when the model version differs from the parent's."
    )
    behaviours: list[BehaviourFile] = Field(
        default_factory=list,
        description="BAHE behaviour vectors of this snapshot's model, carried from snapshot to "
        "snapshot of the same model so that a run encodes only behaviours new to it.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        if (self.parent_version is None) != (self.parent_snapshot_id is None):
            raise ValueError("parent_version and parent_snapshot_id go together")
        if self.parent_version is not None and self.parent_version >= self.version:
            raise ValueError("parent_version must be lower than version")
        paths = self.all_paths()
        if len(paths) != len(set(paths)):
            raise ValueError("a file is listed twice")
        if any(f.sequence > self.version for f in self.files):
            raise ValueError("a file's sequence is newer than the snapshot")
        return self

    def data_files(self, entity: str, kind: str = "rows") -> list[DataFile]:
        return [f for f in self.files if f.entity == entity and f.kind == kind]

    def all_paths(self) -> list[str]:
        listed = [*self.files, *self.indexes, *self.behaviours]
        return [f.path for f in [*listed, *self.attached_files()]]

    def attached_files(self) -> list[AttachedFile]:
        """The statistics and alignment files, which are not rows of an entity."""
        files = [self.statistics] if self.statistics else []
        if self.alignment:
            files += [self.alignment.weights, self.alignment.metadata]
        return files

    def to_json(self) -> bytes:
        # Without figures the field is left out, so readers that predate it can still
        # read store-level commits (they refuse unknown fields).
        optional = ("conservation", "channel", "compatibility", "behaviours")
        optional += ("statistics", "alignment")
        exclude = {name for name in optional if not getattr(self, name)} or None
        return self.model_dump_json(indent=2, exclude=exclude).encode("utf-8") + b"\n"


def new_snapshot_id() -> str:
    return uuid.uuid4().hex


def parse_manifest(data: bytes, origin: str) -> Manifest:
    """Parse and validate a manifest; any problem becomes one :class:`ManifestError` line."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{origin}: not valid JSON: {exc}") from None
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(describe_validation_error(exc, origin)) from None
