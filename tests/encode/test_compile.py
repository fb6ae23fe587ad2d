from pathlib import Path

import pytest

from marc_batch.errors import ConfigError
from marc_batch.model.registry import Registry
from marc_batch.pipeline.encoders import loaded_encoder
from tests.tiny import config_for


def test_encode_compile_on_a_cpu_is_a_one_line_config_error(tmp_path: Path, registry: Path) -> None:
    """torch.compile is measured and supported on CUDA only (benchmarks/GPU.md); on a CPU
    the setting is refused rather than silently ignored or left to compile for minutes."""
    config = config_for(tmp_path, registry).model_copy(deep=True)
    config.encode.device = "cpu"
    version = Registry(registry).current()
    loaded_encoder(config, version)  # cached uncompiled: the compiled one is another entry
    config.encode.compile = True
    with pytest.raises(ConfigError, match=r"encode\.compile needs a CUDA device") as raised:
        loaded_encoder(config, version)
    assert "\n" not in str(raised.value)
