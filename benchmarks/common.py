"""What every benchmark records: the command, the machine, and peak memory.

Timings and memory per pipeline phase come from :class:`marc_batch.tracing.Tracer`,
which the benchmarks switch on around a run; the pipeline marks its own phases.
"""

import importlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GPU_PROBE = (
    "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
)


@cache
def gpu() -> str:
    """The CUDA device torch sees, or "no GPU".

    Asked in a child process: importing torch here would add its few hundred
    MiB to the peak RSS that some benchmarks report for their own process.
    """
    done = subprocess.run(
        [sys.executable, "-c", GPU_PROBE], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "GPU unknown (torch did not start)"


def machine() -> str:
    """CPU model, cores, memory, GPU and load when the benchmark started (the machine is shared)."""
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
                break
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    load = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0))
    return f"{model}, {cores} cores, {memory:.0f} GiB, {gpu()}, load {load:.1f} at start"


def shell_word(arg: str) -> str:
    """``arg`` as a shell word, with a path inside the repository made relative to it and a
    temporary one under ``"$TMPDIR"``: a committed result never names a directory of the
    machine it ran on, and the command still runs when pasted."""
    arg = arg.replace(str(ROOT) + os.sep, "")
    temporary = tempfile.gettempdir() + os.sep
    if arg.startswith(temporary):
        return '"$TMPDIR"/' + shlex.quote(arg[len(temporary) :])
    return shlex.quote(arg)


def command(module: str, argv: list[str] | None = None) -> str:
    """``python -m module args``, as one would type it from the repository root."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", "-m", module, *(shell_word(str(arg)) for arg in args)])


def save(path: Path | None, figures: dict[str, Any]) -> None:
    """Print the figures and write them to ``path`` as JSON."""
    text = json.dumps(figures, indent=2) + "\n"
    print(text, end="", flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def peak_rss_mib() -> float:
    """The most resident memory this process has had so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(module: str, *args: object, inline: bool = False) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process; its last stdout line is a JSON object.

    ``inline`` calls the module's ``child_result(argv)`` in this process instead,
    which saves the start-up of a process (seconds) where only running matters.
    """
    argv = [str(arg) for arg in args]
    if inline:
        return importlib.import_module(module).child_result(argv)
    full = [sys.executable, "-m", module, *argv]
    done = subprocess.run(full, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(full)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
