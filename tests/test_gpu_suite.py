"""The GPU suite cannot rot: it runs here at tiny sizes, with only what the GPU machine has.

The smoke run hides every installed package that is neither in the GPU
machine's environment (torch, transformers, peft, safetensors, tokenizers,
sentence-transformers, pyarrow, numpy, pandas, scikit-learn and what they
require) nor in ``benchmarks.gpu_carry.CARRY``; it must still pass, and it
must import each carried package, so the carry is exactly what is needed.
Its figures mean nothing (a CPU, tiny models); only their shape is checked.
"""

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import weakref
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from packaging.requirements import Requirement

from benchmarks import gpu, gpu_carry, gpu_inputs
from benchmarks.gpu_report import table
from benchmarks.summary import render
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.model.backbone import load_tokenizer

ROOT = Path(__file__).resolve().parent.parent
GPU_MACHINE = (
    "torch",
    "transformers",
    "peft",
    "safetensors",
    "tokenizers",
    "sentence-transformers",
    "pyarrow",
    "numpy",
    "pandas",
    "scikit-learn",
)
NEVER = {"duckdb", "faiss", "prefect"}
# Not on the GPU machine, whatever the packages above require here: what its description says
# it lacks, and rich, which it does not list (here typer brings both rich and pydantic).
ABSENT = {"pydantic", "pydantic-settings", "duckdb", "faiss-cpu", "prefect", "rich"}
REPOSITORY = {"marc_batch", "flows", "benchmarks", "tests", "fixtures"}
# Runs the suite with the hidden packages unfindable, then records what it imported.
HIDING_RUN = """
import importlib.machinery, json, runpy, sys
hidden, record = set(json.loads(sys.argv[1])), sys.argv[2]

class Hidden(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [Hidden if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
sys.argv = ["benchmarks.gpu", *sys.argv[3:]]
try:
    runpy.run_module("benchmarks.gpu", run_name="__main__", alter_sys=True)
finally:
    with open(record, "w") as fh:
        json.dump(sorted({name.partition(".")[0] for name in sys.modules}), fh)
"""


def _machine() -> set[str]:
    """The GPU machine's distributions: the listed ones and what they require, recursively,
    as installed here (extras left out), except :data:`ABSENT` and what only they require."""
    seen: set[str] = set()
    todo = [gpu_carry.canonical(name) for name in GPU_MACHINE]
    while todo:
        name = todo.pop()
        if name in seen or name in ABSENT:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(gpu_carry.canonical(requirement.name))
    return seen


def _modules_of(distributions: set[str]) -> dict[str, set[str]]:
    """Top-level module names of each of ``distributions`` installed here."""
    found: dict[str, set[str]] = {name: set() for name in distributions}
    for module, owners in importlib.metadata.packages_distributions().items():
        for owner in owners:
            if gpu_carry.canonical(owner) in found:
                found[gpu_carry.canonical(owner)].add(module)
    return found


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[str]]:
    allowed = _machine() | set(gpu_carry.CARRY)
    hidden = {
        module
        for module, owners in importlib.metadata.packages_distributions().items()
        if module not in REPOSITORY and not any(gpu_carry.canonical(o) in allowed for o in owners)
    }
    assert hidden >= NEVER
    out = tmp_path_factory.mktemp("gpu")
    record = out / "imported.json"
    suite = ["--tiny", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", HIDING_RUN, json.dumps(sorted(hidden)), str(record), *suite],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,  # about 25 s on a 2-core CPU
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads((out / "gpu.json").read_text()), json.loads(record.read_text())


def test_the_suite_runs_at_tiny_sizes_without_the_packages_the_gpu_machine_lacks(smoke) -> None:
    figures, imported = smoke
    assert not NEVER & set(imported)
    sections = figures["sections"]
    assert {name: s["status"] for name, s in sections.items() if name != "decoder_7b"} == {
        name: "ok"
        for name in ("peak", "encoder", "decoders", "packed", "training", "compiled", "oom")
    }
    assert figures["mode"] == "tiny" and "-m benchmarks.gpu --tiny --out" in figures["command"]
    assert {"gpu", "torch", "cuda", "transformers"} <= set(figures["environment"])
    assert sections["peak"]["tflops"] >= 0 and sections["peak"]["n"] == 256
    encoder = sections["encoder"]
    assert encoder["speedup_defaults"] > 0 and encoder["tokens"]["user"] > 0
    assert all(run["texts_per_second"] > 0 for run in encoder["runs"].values())
    compiled = sections["compiled"]
    assert compiled["compiled"]["tokens"] == compiled["eager"]["tokens"] > 0
    budgets = sections["decoders"]["tiny"]["budgets"]
    assert all(b["runtime_mfu"] > 0 and 0 <= b["padding_ratio"] < 1 for b in budgets.values())
    assert sections["packed"]["equal_within_tolerance"] and sections["packed"]["speedup"] > 0
    oom = sections["oom"]  # no out-of-memory on a CPU: recorded as not exercised, never faked
    assert oom["oom_retries"] == 0 and not oom["exercised"] and oom["correct"]
    for entry in sections["training"]["backbones"].values():
        assert entry["steps_per_second"] > 0 and entry["tokens_per_second"] > 0


def test_the_carry_is_exactly_what_the_suite_imports_beyond_the_gpu_machine(smoke) -> None:
    _, imported = smoke
    carried = _modules_of(set(gpu_carry.CARRY))
    unused = {
        name
        for name, modules in carried.items()
        if name not in gpu_carry.FALLBACK_ONLY and not modules & set(imported)
    }
    assert not unused, f"carried but never imported: {sorted(unused)}"
    on_machine = _machine()
    assert not (set(gpu_carry.CARRY) - gpu_carry.FALLBACK_ONLY) & on_machine
    assert on_machine >= gpu_carry.FALLBACK_ONLY


def test_the_summary_shows_a_full_run_naming_the_gpu_and_skips_smoke_runs(
    smoke, tmp_path: Path
) -> None:
    figures, _ = smoke
    (tmp_path / "gpu").mkdir()
    assert "GPU suite" not in render(tmp_path, tmp_path)
    (tmp_path / "gpu" / "gpu.json").write_text(json.dumps(figures))
    assert "GPU suite" not in render(tmp_path, tmp_path)  # tiny runs mean nothing
    full = {**figures, "mode": "full", "environment": {**figures["environment"], "gpu": "GPU X"}}
    (tmp_path / "gpu" / "gpu.json").write_text(json.dumps(full))
    summary = render(tmp_path, tmp_path).splitlines()
    start = summary.index("### GPU suite (benchmarks/GPU.md)")
    rows = [line for line in summary[start + 4 :] if line.startswith("| ")]
    assert rows and all(row.count(" | ") == 6 and "GPU X" in row for row in rows)
    assert any("speedup >= 1.3" in row for row in rows)
    assert table(figures)[0] == "| figure | ours | peer | ratio | goal | met? | machine |"


def test_without_cuda_the_suite_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--out", str(tmp_path / "out")]) is None
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "skipped, no CUDA device" in lines[0]
    assert not (tmp_path / "out").exists()


def test_the_shipped_inputs_are_small_and_round_trip() -> None:
    meta = json.loads((gpu_inputs.DATA / "ml100k_tokens.json").read_text())
    size = sum(p.stat().st_size for p in gpu_inputs.DATA.rglob("*") if p.is_file())
    assert size < 2 << 20 and meta["bytes"] == gpu_inputs.TOKENS.stat().st_size
    assert all(e["round_trip_exact"] == e["texts"] for e in meta["entities"].values())
    tokenizer = load_tokenizer(gpu_inputs.MINILM)
    texts, pairs = gpu_inputs.load(tokenizer, {"item": 20, "user": 5})
    for entity in ("item", "user"):
        again = tokenizer(texts[entity].strings, add_special_tokens=False)["input_ids"]
        assert again == [row.tolist() for row in texts[entity].ids]
    assert len(pairs["user"]) == len(pairs["item"]) == meta["train_pairs"]


def _wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        archive.writestr(f"{dist_info}/METADATA", metadata)


def test_activate_adds_only_what_is_missing_or_too_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "gpu_carry_probe", "1.0", ("mdurl>=9", "numpy>=1"))
    _wheel(wheels, "mdurl", "9.0")  # installed here at 0.1.x: too old for the probe
    _wheel(wheels, "numpy", "1.0")  # installed here and new enough: the machine's is kept
    used = gpu_carry.activate(tmp_path)
    assert used["gpu-carry-probe"] == "carried 1.0"
    assert used["mdurl"].startswith("carried 9.0 (machine has 0.")
    assert used["numpy"].startswith("machine 2.")
    site = Path(sys.path[0])
    assert (site / "gpu_carry_probe" / "__init__.py").is_file() and not (site / "numpy").exists()
    shutil.rmtree(site)


class ForgetfulOnRetry:
    """Injected out-of-memory: a unit test of the runtime's back-off, not a GPU figure.

    Batches above ``limit`` tokens allocate, then fail as CUDA would; every
    forward first checks that no earlier failed forward's tensor is still
    alive, which it would be if the retry ran inside the ``except`` block.
    """

    def __init__(self, tokenizer, limit: int) -> None:
        self.tokenizer, self.limit, self.failed = tokenizer, limit, []

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        alive = [ref for ref in self.failed if ref() is not None]
        assert not alive, "a failed forward's activations were still alive at the retry"
        if input_ids.numel() > self.limit:
            activations = torch.empty(1 << 16)
            self.failed.append(weakref.ref(activations))
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        mask = attention_mask.float()
        return ((input_ids.float() * mask).sum(1) / mask.sum(1))[:, None]


def test_the_runtime_frees_a_failed_batch_before_retrying_its_halves() -> None:
    tokenizer = load_tokenizer(gpu_inputs.MINILM)
    texts = [" ".join(["movie"] * (1 + i % 7)) + f" {i}" for i in range(64)]
    cpu = torch.device("cpu")
    runtime = EncoderRuntime(ForgetfulOnRetry(tokenizer, limit=40), cpu, 32, token_budget=4096)
    out, stats = runtime.encode(texts)
    reference, _ = EncoderRuntime(ForgetfulOnRetry(tokenizer, 1 << 20), cpu, 32, 4096).encode(texts)
    np.testing.assert_array_equal(out, reference)
    assert stats.oom_retries > 0 and runtime.token_budget < 4096


def test_the_gpu_guide_gives_the_command_and_the_carry() -> None:
    guide = (ROOT / "benchmarks" / "GPU.md").read_text()
    assert "python3 -m benchmarks.gpu --out" in guide and "make gpu-carry" in guide
    assert ".gpu-carry" in (ROOT / ".gitignore").read_text()
    assert re.search(r"^gpu-carry:", (ROOT / "Makefile").read_text(), re.M)
