"""The GPU suite in one command: encoder and decoder throughput, MFU, packing, OOM, training.

Usage (benchmarks/GPU.md says how to get a GPU machine to run it):
    python3 -m benchmarks.gpu --out benchmarks/results/gpu   (an H100: about 4.5 min)
    python3 -m benchmarks.gpu --tiny --out /tmp/gpu-smoke    (tiny sizes; runs on a CPU too)

Self-contained: it imports what the GPU machine has (torch, transformers,
peft, sentence-transformers, numpy, ...) plus the wheels ``make gpu-carry``
puts in ``.gpu-carry/`` (activated first, see ``benchmarks/gpu_carry.py``),
reads its inputs from ``benchmarks/gpu_data/`` and builds every model from
a config with random weights, so nothing is downloaded. Figures go to
``OUT/gpu.json`` after every section, with the device's name, the torch,
CUDA and transformers versions and this command; ``--deadline`` (seconds
from start) keeps a run inside the machine's 10-minute limit by skipping
sections that would not finish. Without CUDA, and without ``--tiny``, it
prints one line and exits 0.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.gpu")
    parser.add_argument("--out", type=Path, required=True, help="directory for gpu.json")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (the CPU smoke run)")
    parser.add_argument("--deadline", type=float, default=500.0, help="seconds from start")
    parser.add_argument("--only", nargs="*", default=[], help="sections to run (peak always)")
    args = parser.parse_args(argv)
    from benchmarks.gpu_carry import activate

    carry = activate()
    # The GPU machine is offline: a hub lookup would only wait for a timeout.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    if not torch.cuda.is_available() and not args.tiny:
        print(f"benchmarks.gpu: skipped, no CUDA device (torch {torch.__version__})")
        return None
    from benchmarks.gpu_suite import SECTIONS, run

    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    run(argv, args.out, args.tiny, STARTED + args.deadline, args.only, carry)
    from benchmarks.gpu_report import table

    path = args.out / "gpu.json"
    figures = json.loads(path.read_text())
    print("\n".join(table(figures)))
    print(f"[gpu] wrote {path} in {time.perf_counter() - STARTED:.0f} s")
    return figures


if __name__ == "__main__":
    main()
