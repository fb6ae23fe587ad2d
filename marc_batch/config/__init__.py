"""Typed configuration: one file plus ``MARC_BATCH_*`` environment overrides."""

from marc_batch.config.loader import Config, load_config
from marc_batch.config.model import EvaluateConfig, LoraConfig, ModelConfig, TrainConfig
from marc_batch.config.runtime import (
    EncodeConfig,
    FlowsConfig,
    IndexConfig,
    StoreConfig,
)
from marc_batch.config.sources import SourcesConfig, SplitConfig, TableSource
from marc_batch.config.templates import TemplatesConfig

__all__ = [
    "Config",
    "EncodeConfig",
    "EvaluateConfig",
    "FlowsConfig",
    "IndexConfig",
    "LoraConfig",
    "ModelConfig",
    "SourcesConfig",
    "SplitConfig",
    "StoreConfig",
    "TableSource",
    "TemplatesConfig",
    "TrainConfig",
    "load_config",
]
