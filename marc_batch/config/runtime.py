"""Settings of the encoder, store, index and flows.

Each section is small on purpose: it names the choices an operator makes
per deployment; the components that read them own their defaults here.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EncodeConfig(BaseModel):
    """How texts are batched and run through the encoder."""

    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_length: int = Field(256, ge=8, description="Tokens per text; longer texts are cut.")
    token_budget: int = Field(16_384, ge=64, description="Padded tokens per batch.")
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")


class StoreConfig(BaseModel):
    """Where snapshots, quarantine files and run outputs are written."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field("marc-store", description="A local directory or an s3:// URI.")
    dtype: Literal["float32", "float16"] = "float32"
    shards: int = Field(8, ge=1, le=4096)


class IndexConfig(BaseModel):
    """FAISS index publishing and its recall gate."""

    model_config = ConfigDict(extra="forbid")

    recall_target: float = Field(0.95, gt=0.0, le=1.0)
    flat_max_rows: int = Field(
        100_000, ge=1, description="Up to this many vectors the exact Flat index is used."
    )


class FlowsConfig(BaseModel):
    """Defaults of the Prefect flows."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field("latest", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    nightly_cron: str = "0 2 * * *"
