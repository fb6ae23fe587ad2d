import os
from pathlib import Path

import pytest

from marc_batch.config import load_config
from marc_batch.errors import ConfigError
from tests.conftest import run_cli


def test_defaults_need_no_file() -> None:
    config = load_config()
    assert config.sources.dataset == "ml-100k"
    assert config.model.k == 64
    assert config.flows.channel == "latest"


def test_toml_and_yaml_give_the_same_config(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[encode]\ntoken_budget = 4096\n[templates]\nitem = "{title}"\n')
    yaml = tmp_path / "c.yaml"
    yaml.write_text("encode:\n  token_budget: 4096\ntemplates:\n  item: '{title}'\n")
    assert load_config(toml) == load_config(yaml)
    assert load_config(toml).encode.token_budget == 4096


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[encode]\ntoken_budget = 4096\n")
    monkeypatch.setenv("MARC_BATCH_ENCODE__TOKEN_BUDGET", "8192")
    monkeypatch.setenv("MARC_BATCH_SOURCES__SPLIT__KIND", "global-temporal")
    config = load_config(path)
    assert config.encode.token_budget == 8192
    assert config.sources.split.kind == "global-temporal"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[encode]\ntoken_budget = -1\n",
            "encode.token_budget: Input should be greater than or equal to 64",
        ),
        ("[encode]\ntokn_budget = 1\n", "encode.tokn_budget: Extra inputs are not permitted"),
        ('[templates]\nitem = "{title.__class__}"\n', "templates.item: template"),
        (
            '[sources]\ndataset = "x"\n[sources.items]\nformat = "csv"\n',
            "a csv source needs 'path'",
        ),
        ("[encode\n", "cannot parse"),
    ],
)
def test_invalid_config_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        load_config(path)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_or_unknown_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    other = tmp_path / "c.ini"
    other.write_text("x")
    with pytest.raises(ConfigError, match="unknown config format"):
        load_config(other)


def test_cli_reports_a_bad_config_on_one_line_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("store:\n  shards: zero\n")
    result = run_cli("ingest", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: store.shards: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]
    assert "Traceback" not in result.stderr


def test_cli_reports_a_bad_environment_override(tmp_path: Path) -> None:
    env = {**os.environ, "MARC_BATCH_SOURCES__MAX_QUARANTINE_FRACTION": "2"}
    result = run_cli("ingest", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "sources.max_quarantine_fraction" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_environment_override_that_is_not_json_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARC_BATCH_STORE", "{not json")
    with pytest.raises(ConfigError, match='config: error parsing value for field "store"'):
        load_config()
