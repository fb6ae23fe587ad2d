"""The root configuration and how it is read: one file, then environment overrides.

Precedence, highest first: ``MARC_BATCH_*`` environment variables (nested
fields with ``__``, e.g. ``MARC_BATCH_ENCODE__TOKEN_BUDGET=8192``), the TOML
or YAML file, the defaults. Every validation problem becomes one
:class:`ConfigError` line naming the field, so a typo never reaches a run.
"""

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from marc_batch.config.index import IndexConfig
from marc_batch.config.model import EvaluateConfig, ModelConfig
from marc_batch.config.runtime import (
    EncodeConfig,
    FlowsConfig,
)
from marc_batch.config.sources import SourcesConfig
from marc_batch.config.store import StoreConfig
from marc_batch.config.templates import TemplatesConfig
from marc_batch.errors import ConfigError

ENV_PREFIX = "MARC_BATCH_"


class Config(BaseSettings):
    """Everything a run needs to know; see each section for its fields."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    encode: EncodeConfig = Field(default_factory=EncodeConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    flows: FlowsConfig = Field(default_factory=FlowsConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment must beat them.
        return env_settings, init_settings


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML or YAML file into a dict, with one-line errors."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        if path.suffix == ".toml":
            with path.open("rb") as fh:
                return tomllib.load(fh)
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: the top level must be a mapping")
            return data
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{path}: cannot parse: {detail}") from None
    raise ConfigError(f"{path}: unknown config format (use .toml, .yaml or .yml)")


def describe_validation_error(exc: ValidationError, origin: str) -> str:
    """One line naming the first invalid field and the problem (plus a count of others)."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "(root)"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{origin}: {field}: {message}{more}"


def load_config(path: Path | str | None = None) -> Config:
    """Load the configuration from ``path`` (optional) and the environment."""
    data = read_config_file(Path(path)) if path is not None else {}
    origin = str(path) if path is not None else "config"
    try:
        return Config(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, origin)) from None
    except SettingsError as exc:  # an environment override that is not valid JSON
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"{origin}: {exc}{cause}") from None
