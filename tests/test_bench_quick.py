"""The benchmark suite's quick mode runs end to end (its figures are not checked), and the
committed summary is what its JSON files render to."""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import summary

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WRITTEN = (
    "refresh_cost",
    "scaling",
    "storage",
    "faiss_1m",
    "encoder_throughput",
    "bahe_throughput",
    "bahe_users",
    "ingest_users",
    "validate_1m",
    "store_1m",
    "history_1m",
    "drift_1000000",
    "run",
)


def _committed() -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in RESULTS.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_quick_bench_runs_and_leaves_committed_results_alone(tmp_path: Path) -> None:
    before = _committed()
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--mode", "quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    for name in WRITTEN:
        assert (out / f"{name}.json").is_file(), name
    rendered = (out / "summary.md").read_text()
    assert "| figure | ours | peer | ratio | goal | met? | machine |" in rendered
    assert "benchmarks/results/analysis.md)" in rendered
    assert _committed() == before


def test_the_committed_summary_is_rendered_from_the_committed_json() -> None:
    """summary.md is generated: a change to the renderer must come with the file it renders."""
    assert summary.render(RESULTS, RESULTS) == (RESULTS / "summary.md").read_text()
