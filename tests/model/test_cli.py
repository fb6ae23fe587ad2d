"""``marc-batch train`` then ``evaluate`` end to end on MovieLens-100K with a tiny backbone."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from marc_batch.cli.app import app
from marc_batch.errors import ConfigError
from marc_batch.evaluate.report import METHOD_ORDER
from tests.model.conftest import write_training_config


def test_train_then_evaluate_writes_the_report(bert_dir: Path, tmp_path: Path) -> None:
    evaluate = """
[evaluate]
seeds = [0, 1]
epochs = 1
batch_size = 8192
hidden = [8]
[evaluate.lift]
epochs = 1
batch_size = 8192
hidden = [8]
embedding_dim = 4
"""
    config = write_training_config(bert_dir, tmp_path, evaluate)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--config", str(config), "--json"])
    assert trained.exit_code == 0, trained.output
    version = json.loads(trained.stdout)["version"]
    assert (tmp_path / "models" / version / "manifest.json").is_file()

    out = tmp_path / "report"
    evaluated = runner.invoke(app, ["evaluate", "--config", str(config), "--out", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((out / "report.json").read_text())
    assert report["model_version"] == version
    assert set(report["methods"]) == set(METHOD_ORDER)
    assert all(len(m["test_auc"]) == 2 for m in report["methods"].values())
    assert set(report["probe"]) == {"frozen", "proj-final", "marc"}
    assert all(len(layers) == 4 for layers in report["probe"].values())
    # Only the top transformer layer is adapted: only the final hidden state differs.
    assert [layer["adapted"] for layer in report["probe"]["marc"]] == [False, False, False, True]
    assert report["adapted_from_layer"] == 3
    assert (out / "auc_per_layer.png").stat().st_size > 0
    assert (out / "auc_per_method.png").stat().st_size > 0
    assert "| `marc` |" in (out / "report.md").read_text()
    # The lift of every method over the id baseline, under both protocols.
    assert set(report["lift"]) == {"standard", "leak-free"}
    standard, leak_free = report["lift"]["standard"], report["lift"]["leak-free"]
    assert leak_free["train_rows"] < standard["train_rows"]
    for protocol in (standard, leak_free):
        assert set(protocol["methods"]) == set(METHOD_ORDER)
        for method in protocol["methods"].values():
            gains = np.subtract(method["test_auc"], protocol["baseline"]["test_auc"])
            assert method["auc_gain_mean"] == pytest.approx(gains.mean())
    assert (out / "lift.png").stat().st_size > 0

    lift_only = tmp_path / "lift-only"
    evaluated = runner.invoke(
        app, ["evaluate", "--config", str(config), "--out", str(lift_only), "--lift-only"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((lift_only / "report.json").read_text())
    assert report["methods"] == {} and report["probe"] == {}
    assert set(report["lift"]["standard"]["methods"]) == {"pca-final", "pca-best-mid", "marc"}
    assert 1 <= report["best_mid_layer"] <= 2
    assert sorted(p.name for p in lift_only.iterdir()) == ["lift.png", "report.json", "report.md"]
    final_layer = ["--lift-only", "--mid-layer", "3"]
    refused = runner.invoke(
        app, ["evaluate", "--config", str(config), "--out", str(out), *final_layer]
    )
    # main() prints a MarcBatchError as one "error: ..." line; the runner calls the app inside it.
    assert isinstance(refused.exception, ConfigError)
    assert str(refused.exception) == "--mid-layer must name a middle layer, 1 .. 2"
