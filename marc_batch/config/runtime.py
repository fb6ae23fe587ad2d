"""Settings of the encoder and flows.

Each section is small on purpose: it names the choices an operator makes
per deployment; the components that read them own their defaults here.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from marc_batch.naming import CHANNEL_NAME


class EncodeConfig(BaseModel):
    """How texts are batched and run through the encoder."""

    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_length: int = Field(256, ge=8, description="Tokens per text; longer texts are cut.")
    token_budget: int = Field(16_384, ge=64, description="Padded tokens per batch.")
    threads: int | None = Field(
        None, ge=1, description="CPU threads of the encoder and its tokenisers; default: all cores."
    )
    compile: bool = Field(
        False,
        description="CUDA only: torch.compile the backbone (minutes once per process, "
        "then a faster forward; for large runs).",
    )


class FlowsConfig(BaseModel):
    """Defaults of the Prefect flows and where their shard tasks run.

    ``runner`` picks the engine: ``threads`` on this machine, or an existing
    distributed engine through Prefect's task runners, ``dask`` (a temporary
    local cluster of ``workers`` processes, or the scheduler at
    ``cluster_address``) or ``ray`` (``ray://`` or ``auto`` address; each
    encode task asks Ray for ``gpus_per_task`` GPUs).
    """

    model_config = ConfigDict(extra="forbid")

    channel: str = Field("latest", pattern=CHANNEL_NAME.pattern)
    nightly_cron: str = "0 2 * * *"
    runner: Literal["threads", "dask", "ray"] = "threads"
    workers: int = Field(2, ge=1, description="Threads, or local cluster processes.")
    cluster_address: str | None = Field(None, description="An existing Dask or Ray cluster.")
    gpus_per_task: float = Field(0.0, ge=0.0, description="Ray only: GPUs reserved per task.")
    slot_lease_seconds: float = Field(
        60.0,
        ge=60.0,  # the shortest lease a Prefect server grants
        description="A shard holds its 'gpu' slot by a lease it renews; if its process dies, "
        "the slot is free again this long after the last renewal.",
    )
    slot_wait_seconds: float = Field(
        3600.0,
        gt=0.0,
        description="How long a shard waits for a 'gpu' slot before the run fails.",
    )
    shard_timeout_seconds: float | None = Field(
        None,
        gt=0.0,
        description="A shard still encoding after this long is stopped and retried (unset: none).",
    )
