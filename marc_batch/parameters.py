"""The parameters of every flow, validated by pydantic before a run starts.

Each flow takes one model, so a deployment's parameters, the CLI and a
test all build the same object, and a typo fails the run before any work.
They live in the library, not beside the flows, so that the CLI can build
them without importing the flows package.
"""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from marc_batch.config import Config, load_config
from marc_batch.naming import CHANNEL_NAME

CHANNEL = CHANNEL_NAME.pattern


class FlowParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: Path | None = Field(
        None, description="TOML or YAML config file; MARC_BATCH_* variables apply on top."
    )

    def load(self) -> Config:
        return load_config(self.config)


class RefreshParameters(FlowParameters):
    model_version: str = Field("current", description="Registered model version, or 'current'.")
    channel: str | None = Field(None, pattern=CHANNEL, description="Default: flows.channel.")


class BackfillParameters(FlowParameters):
    items: Path | None = Field(
        None,
        description="A .parquet or .csv file of new or changed items; default: compare the "
        "whole configured catalogue (deleted ids included).",
    )
    channel: str | None = Field(None, pattern=CHANNEL, description="Default: flows.channel.")


class TrainParameters(FlowParameters):
    epochs: int | None = Field(None, ge=1, description="Override model.train.epochs.")
    compare_baselines: bool = Field(
        True, description="Also score the baselines (docs/marc.md protocol) and write the report."
    )
    report_dir: Path | None = Field(
        None, description="Where the evaluation report goes; default <registry>/reports/<version>."
    )


class PublishParameters(FlowParameters):
    snapshot: str = Field(description="Version number, snapshot id or channel to publish.")
    channel: str = Field("prod", pattern=CHANNEL)
    expected: int | None = Field(
        None, ge=1, description="Only move the channel if it still shows this version."
    )
    allow_incompatible: bool = Field(
        False,
        description="Publish another model's vectors to a protected channel without a passing "
        "compatibility record.",
    )


class RollbackParameters(FlowParameters):
    channel: str = Field("prod", pattern=CHANNEL)
