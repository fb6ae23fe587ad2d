"""The GPU suite's measurements; ``benchmarks/gpu.py`` is the command that runs them.

Sections, in run order (each writes its figures into the JSON as it ends, so
a run cut short still leaves what it measured; one that fails records its
error and the next one starts):

- ``peak``: the bf16 matrix-product rate of this device (8192-cube matmuls),
  the denominator of every model FLOP utilisation (MFU) figure;
- ``encoder``: MiniLM-shaped encoder, ``EncoderRuntime`` against
  ``SentenceTransformer.encode`` on the same strings, weights and dtype;
- ``decoders``: Qwen2-0.5B- and -1.5B-shaped encoders through the runtime
  (end to end) and forward-only on the same batches, several token budgets;
- ``packed``: padding-free batches against padded ones, speed and equality;
- ``training``: MARC training steps (LoRA on the top layers, bf16 autocast);
- ``decoder_7b``: the 7B shape, where memory and time allow;
- ``compiled``: the focus shape again with ``encode.compile`` (CUDA only);
- ``oom``: a token budget far above device memory; the runtime's back-off.
"""

import gc
import json
import os
import platform
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers

from benchmarks import gpu_models as gm
from benchmarks.gpu_inputs import MINILM, Texts, load
from marc_batch.config import ModelConfig
from marc_batch.encode.marc import prepare
from marc_batch.model.backbone import Backbone, load_tokenizer
from marc_batch.model.marc import MarcEncoder

ENTITIES = ("item", "user")
SHAPE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
)


@dataclass(frozen=True)
class Sizes:
    limit: dict[str, int] | None  # texts per entity (None: all of ML-100K)
    max_length: int
    peak_n: int
    peak_iterations: int
    encoder_budgets: tuple[int, ...]
    peer_batch_sizes: tuple[int, ...]
    repeats: int
    decoders: dict[str, tuple[int, tuple[int, ...]]]  # shape -> (text repeats, budgets)
    large: str | None
    focus: str  # the shape of the packed, OOM and goal figures
    packed_budget: int
    oom_budget: int
    train: tuple[tuple[str, int], ...]  # (backbone, LoRA layers)
    train_steps: int
    warmup_steps: int


FULL = Sizes(
    limit=None,
    max_length=256,
    peak_n=8192,
    peak_iterations=100,
    encoder_budgets=(16_384, 65_536),
    peer_batch_sizes=(32, 256),
    repeats=3,
    decoders={
        "qwen2-0.5b": (4, (4096, 16_384, 65_536)),
        "qwen2-1.5b": (4, (4096, 16_384, 65_536)),
    },
    large="qwen2-7b",
    focus="qwen2-1.5b",
    packed_budget=16_384,
    oom_budget=1 << 22,
    train=(("minilm", 1), ("qwen2-0.5b", 4)),
    train_steps=20,
    warmup_steps=3,
)
TINY = Sizes(
    limit={"item": 160, "user": 8},
    max_length=64,
    peak_n=256,
    peak_iterations=3,
    encoder_budgets=(1024,),
    peer_batch_sizes=(32,),
    repeats=1,
    decoders={"tiny": (1, (512, 2048))},
    large=None,
    focus="tiny",
    packed_budget=1024,
    oom_budget=1 << 22,
    train=(("minilm", 1), ("tiny", 1)),
    train_steps=2,
    warmup_steps=1,
)


@dataclass
class Context:
    sizes: Sizes
    device: torch.device
    dtype: torch.dtype
    deadline: float  # perf_counter value after which no new measurement starts
    texts: dict[str, Texts]
    pairs: dict[str, np.ndarray]
    out: Path
    figures: dict
    tokenizer: object = None
    peak_flops: float | None = None
    cached: tuple[str, MarcEncoder] | None = None

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def release(self) -> None:
        self.cached = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def decoder(self, shape: str) -> MarcEncoder:
        """A MARC encoder on a random ``shape`` decoder, in the run's dtype (kept for reuse)."""
        if self.cached is None or self.cached[0] != shape:
            self.release()
            model = gm.decoder(shape, self.device, self.dtype)
            backbone = Backbone(model, self.tokenizer)
            self.cached = (shape, prepare(MarcEncoder(backbone, self.config()), self.device))
        return self.cached[1]

    def config(self) -> ModelConfig:
        """MARC defaults, with both entities' texts cut at the run's max_length."""
        length = self.sizes.max_length
        return ModelConfig(train={"user_max_length": length, "item_max_length": length})

    def strings(self, entity: str, repeat: int = 1) -> list[str]:
        return self.texts[entity].strings * repeat

    def rows(self, strings: list[str]) -> list[list[int]]:
        return self.tokenizer(strings, truncation=True, max_length=self.sizes.max_length)[
            "input_ids"
        ]

    def mfu(self, matmul_params: int, tokens: int, seconds: float) -> float | None:
        if not self.peak_flops or not seconds:
            return None
        return round(2 * matmul_params * tokens / seconds / self.peak_flops, 4)

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu.json").write_text(json.dumps(self.figures, indent=2) + "\n")


def environment(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(),
    }
    try:
        import sentence_transformers

        info["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        info["sentence_transformers"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=torch.cuda.get_device_name(device),
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
        )
    else:
        info["gpu"] = f"none: CPU smoke run ({platform.machine()})"
    return info


def timed(ctx: Context, fn: Callable[[], object]) -> tuple[float, object]:
    ctx.sync()
    start = time.perf_counter()
    value = fn()
    ctx.sync()
    return time.perf_counter() - start, value


def peak(ctx: Context) -> dict:
    n, iterations = ctx.sizes.peak_n, ctx.sizes.peak_iterations
    a, b = (torch.randn(n, n, device=ctx.device, dtype=ctx.dtype) for _ in range(2))
    c = torch.empty_like(a)

    def burst() -> None:
        for _ in range(iterations):
            torch.mm(a, b, out=c)

    burst()
    best = min(timed(ctx, burst)[0] for _ in range(3))
    ctx.peak_flops = 2 * n**3 * iterations / best
    return {
        "n": n,
        "dtype": str(ctx.dtype),
        "iterations": iterations,
        "best_seconds": best,
        "tflops": round(ctx.peak_flops / 1e12, 1),
    }


# The out-of-memory test runs last: were a huge batch to leave the device unusable (it should
# not), nothing else would be lost.
SECTIONS = ("peak", "encoder", "decoders", "packed", "training", "decoder_7b", "compiled", "oom")
# Seconds a section needs at least on an H100 (it does not start with less left).
NEEDS = {
    "peak": 5,
    "encoder": 30,
    "decoders": 60,
    "packed": 20,
    "oom": 40,
    "training": 40,
    "decoder_7b": 45,
    "compiled": 150,
}


def shown(argv: list[str], out: Path) -> list[str]:
    """``argv`` as committed results may name it: ``--out`` relative to the repository, or
    ``OUT/<name>`` when it lay outside (a device's output folder is no path of ours)."""
    target = out.resolve()
    here = Path.cwd().resolve()
    name = str(target.relative_to(here)) if target.is_relative_to(here) else f"OUT/{target.name}"
    return [name if arg == str(out) else arg for arg in argv]


def run(argv: list[str], out: Path, tiny: bool, deadline: float, only: list[str], carry: dict):
    # Imported here: the sections import this module's Context.
    from benchmarks.gpu_encode import compiled, decoders, encoder, large, oom, packed
    from benchmarks.gpu_train import training

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sizes = TINY if tiny else FULL
    tokenizer = load_tokenizer(MINILM)
    texts, pairs = load(tokenizer, sizes.limit)
    ctx = Context(
        sizes=sizes,
        device=device,
        dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
        deadline=deadline,
        texts=texts,
        pairs=pairs,
        out=out,
        figures={
            "command": shlex.join(
                [Path(sys.executable).name, "-m", "benchmarks.gpu", *shown(argv, out)]
            ),
            "mode": "tiny" if tiny else "full",
            "environment": environment(device),
            "carry": carry,
            "sections": {},
        },
        tokenizer=tokenizer,
    )
    transformers.utils.logging.disable_progress_bar()
    steps = {
        "peak": peak,
        "encoder": encoder,
        "decoders": lambda c: decoders(c, sizes.decoders),
        "packed": packed,
        "oom": oom,
        "training": training,
        "decoder_7b": large,
        "compiled": compiled,
    }
    started = time.perf_counter()
    for name in SECTIONS:
        if only and name not in only and name != "peak":
            continue
        print(f"[gpu] {name} ({ctx.left():.0f} s left)", flush=True)
        if not tiny and ctx.left() < NEEDS[name]:
            ctx.figures["sections"][name] = {"status": "skipped: out of time"}
            continue
        begun = time.perf_counter()
        try:
            figures = {"status": "ok", **steps[name](ctx)}
        except Exception as error:  # one section's failure must not cost the GPU window
            figures = {
                "status": f"error: {type(error).__name__}: {error}"[:500],
                "traceback": traceback.format_exc()[-3000:],
            }
            ctx.release()
        # Keep what a failed section had already recorded (decoders: one shape at a time).
        figures = {**ctx.figures["sections"].get(name, {}), **figures}
        figures["section_seconds"] = round(time.perf_counter() - begun, 1)
        if name == "decoder_7b":
            ctx.figures["sections"].setdefault("decoders", {}).update(figures.pop("shapes", {}))
        ctx.figures["sections"][name] = figures
        ctx.figures["wall_seconds"] = round(time.perf_counter() - started, 1)
        ctx.write()
    return ctx.figures
