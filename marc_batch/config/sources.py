"""Where catalogue, user and interaction records come from, and how strict ingestion is."""

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TableSource(BaseModel):
    """One table: a Parquet file or glob, a CSV file, or a DuckDB SQL query.

    ``rename`` maps source column names to the canonical ones (``id``,
    ``title``, ``updated_at``, ``user_id``, ...), so a catalogue keeps its own
    naming and the rest of the service sees one schema.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["parquet", "csv", "duckdb"]
    path: str | None = Field(None, description="File or glob for parquet and csv sources.")
    query: str | None = Field(None, description="SQL for duckdb sources.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    rename: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _location_matches_format(self) -> Self:
        if self.format == "duckdb" and not self.query:
            raise ValueError("a duckdb source needs 'query'")
        if self.format != "duckdb" and not self.path:
            raise ValueError(f"a {self.format} source needs 'path'")
        return self


class SplitConfig(BaseModel):
    """How interactions are split into train, validation and test.

    ``per-user-temporal`` (default) holds out each user's most recent
    ratings, so every test user has training history. ``global-temporal``
    cuts the whole log at two points in time; most of its test users then
    have no history, which makes it a cold-start benchmark.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["per-user-temporal", "global-temporal"] = "per-user-temporal"
    valid_fraction: float = Field(0.1, ge=0.0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0.0, lt=0.5)


class SourcesConfig(BaseModel):
    """Inputs of a run plus the validation rules applied to them.

    ``dataset`` supplies every table not given explicitly: ``ml-100k`` is the
    embedded MovieLens-100K; a directory path reads a MovieLens copy in the
    RecBole atomic layout or the original GroupLens ml-100k / ml-1m layouts.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = "ml-100k"
    items: TableSource | None = None
    users: TableSource | None = None
    interactions: TableSource | None = None
    max_text_bytes: int = Field(
        16_384, gt=0, description="Rows whose text fields add up to more bytes are quarantined."
    )
    max_quarantine_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="A table with more quarantined rows fails the run."
    )
    positive_rating: float = Field(4.0, description="Ratings at or above this are a click.")
    part_rows: int = Field(
        500_000,
        ge=1_000,
        description="Ingestion validates and renders about this many rows of a table at a time "
        "at most: a larger shard is cut into parts by the same stable hash.",
    )
    memory_limit: str = Field(
        "512MB",
        description="DuckDB's working memory while it splits the whole interaction log; past "
        "it, DuckDB spills to the run's working directory.",
    )
    split: SplitConfig = Field(default_factory=SplitConfig)

    @model_validator(mode="after")
    def _every_table_has_a_source(self) -> Self:
        missing = [
            name for name in ("items", "users", "interactions") if getattr(self, name) is None
        ]
        if missing and self.dataset is None:
            raise ValueError(f"no dataset and no source for: {', '.join(missing)}")
        return self
