"""Settings of the snapshot store: where it lives and how its files are laid out."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class S3Config(BaseModel):
    """How to reach an S3-compatible object store; credentials come from the usual AWS variables.

    The store relies on conditional PutObject (``If-None-Match: *`` and
    ``If-Match``), which AWS S3 and most compatible servers honour.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str | None = Field(None, description="e.g. http://127.0.0.1:9000; default AWS.")
    region: str | None = None
    retries: int = Field(
        5,
        ge=1,
        le=20,
        description="Attempts per request. 500, 502, 503, 504, throttling (503 SlowDown), "
        "timeouts and dropped connections are retried with exponential back-off and jitter.",
    )
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open a connection.")
    read_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds to wait for a response before the attempt counts as failed.",
    )


class StoreConfig(BaseModel):
    """Where snapshots, quarantine files and run outputs are written, and how they are kept."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field("marc-store", description="A local directory or an s3://bucket/prefix URI.")
    dtype: Literal["float32", "float16"] = "float32"
    shards: int = Field(8, ge=1, le=4096)
    row_group_bytes: int = Field(
        64 * 2**20, ge=2**16, description="Target uncompressed bytes per Parquet row group."
    )
    file_bytes: int = Field(
        512 * 2**20, ge=2**16, description="A data file rolls over past this many input bytes."
    )
    keep_versions: int = Field(10, ge=1, description="gc keeps this many newest versions.")
    gc_grace_seconds: float = Field(
        3600.0, ge=0.0, description="gc leaves unreferenced files younger than this alone."
    )
    s3: S3Config = Field(default_factory=S3Config)
