"""Typed configuration: one file plus ``MARC_BATCH_*`` environment overrides."""

from marc_batch.config.index import IndexConfig
from marc_batch.config.loader import Config, load_config
from marc_batch.config.model import (
    CompatibilityConfig,
    EvaluateConfig,
    LiftConfig,
    LoraConfig,
    ModelConfig,
    TrainConfig,
)
from marc_batch.config.runtime import (
    EncodeConfig,
    FlowsConfig,
)
from marc_batch.config.sources import SourcesConfig, SplitConfig, TableSource
from marc_batch.config.store import S3Config, StoreConfig
from marc_batch.config.templates import TemplatesConfig

__all__ = [
    "CompatibilityConfig",
    "Config",
    "EncodeConfig",
    "EvaluateConfig",
    "FlowsConfig",
    "IndexConfig",
    "LiftConfig",
    "LoraConfig",
    "ModelConfig",
    "S3Config",
    "SourcesConfig",
    "SplitConfig",
    "StoreConfig",
    "TableSource",
    "TemplatesConfig",
    "TrainConfig",
    "load_config",
]
