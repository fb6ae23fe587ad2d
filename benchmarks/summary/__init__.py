"""``summary.md``: every figure against its peer in the same run, rendered from the JSON only.

Usage: python -m benchmarks.summary [--results benchmarks/results]

Each result file records the command that produced it and the machine, so
the summary can be rebuilt at any time without running anything, and it
says only what the numbers say: goals are checked here, from the numbers.
Why a goal is missed, and what a figure means, is written by hand in
``benchmarks/results/analysis.md``, which the summary links to.

A :class:`Section` turns one or a few result files into rows and tables;
one whose first file is missing is skipped, so a run of some steps (or a
machine without a GPU) still renders. To add figures, write a function from
the files' JSON to a :class:`Part` and list it in :data:`SECTIONS`.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.summary import bahe, engines, figures, pipeline, versions
from benchmarks.summary.table import Part, Row, Table, anchor, markdown

RESULTS = Path(__file__).resolve().parent.parent / "results"
ANALYSIS = RESULTS / "analysis.md"
# Prose fields some result files record about what they measured, quoted under Sources.
DESCRIPTIONS = ("model", "peer", "catalogue", "vectors", "queries", "raw_hidden_state")


@dataclass(frozen=True)
class Section:
    """Result files (the first one required) and the function that renders them.

    ``build`` gets each file's JSON, None for an optional one that is
    missing. ``committed`` files are read from the committed results even
    when a run writes elsewhere (the quality reports, which take hours).
    """

    sources: tuple[str, ...]
    build: Callable[..., Part]
    committed: bool = False


SECTIONS: list[Section] = [
    Section(("encoder_throughput.json",), figures.encoder),
    Section(("bahe_throughput.json",), bahe.throughput),
    Section(("bahe_users.json", "bahe_users_1m.json"), bahe.users),
    Section(("refresh_cost.json",), pipeline.refresh_cost),
    Section(("scaling.json", "refresh_cost.json"), pipeline.scaling),
    Section(("ingest_users.json", "bahe_users_1m.json"), pipeline.ingest_users),
    Section(("dask_workers.json",), engines.dask_workers),
    Section(("storage.json",), figures.storage),
    Section(("faiss_1m.json",), figures.faiss),
    *(
        Section((f"ml100k-minilm-k{k}/report.json",), figures.lift, committed=True)
        for k in (64, 32, 128)
    ),
    Section(
        ("ml100k-minilm-k32/report.json", "ml100k-minilm-k128/report.json"),
        figures.lift_across_k,
        committed=True,
    ),
    Section(
        ("ml100k-minilm-k64-lift/all-rows-encoder/report.json",),
        partial(figures.lift, label=", encoder trained on every training row"),
        committed=True,
    ),
    *(
        Section((f"ml100k-minilm-k{k}/report.json",), figures.quality, committed=True)
        for k in (64, 32, 128)
    ),
    Section(
        tuple(
            f"bahe-quality/{encoder}-seed{seed}/report.json"
            for encoder in ("bahe", "text")
            for seed in range(3)
        ),
        bahe.quality,
        committed=True,
    ),
    Section(("validate_1m.json",), figures.validate),
    Section(("store_1m.json",), figures.store),
    Section(("store_1m_float16.json",), figures.store),
    Section(("history_1m.json",), versions.history),
    Section(("drift_1000000.json", "drift_250000.json"), versions.drift),
    Section(
        ("compatibility/ml100k-minilm-k64.json",),
        partial(versions.compatibility, change="same recipe, another seed"),
        committed=True,
    ),
    Section(
        ("compatibility/ml100k-minilm-k64-recipe-change.json",),
        partial(versions.compatibility, change="leak-free recipe, then all-rows recipe"),
        committed=True,
    ),
    Section(
        ("compatibility/ml100k-minilm-k64-bct-w5.json",),
        partial(
            versions.compatibility,
            change="another seed, trained compatible with the first (compatibility_weight 5)",
        ),
        committed=True,
    ),
    Section(
        ("compatibility/ml100k-minilm-k64-bct-w20.json",),
        partial(
            versions.compatibility,
            change="another seed, trained compatible with the first (compatibility_weight 20)",
        ),
        committed=True,
    ),
    Section(("gpu/gpu.json",), figures.gpu, committed=True),
    Section(
        ("gpu/gpu-compiled.json",),
        partial(figures.gpu, title="GPU suite, encode.compile (benchmarks/GPU.md)"),
        committed=True,
    ),
]


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def headline(rows: list[Row], machines: dict[str, str]) -> list[str]:
    """The table of every figure; machines are numbered, and listed under it in full."""
    cells = []
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        goal = row.goal.shown if row.goal else "none set"
        machine = machines.get(row.machine or "", "not recorded")
        cells.append([row.figure, row.ours, row.peer, row.ratio_text, goal, met, machine])
    header = ["figure", "ours", "peer", "ratio", "goal", "met?", "machine"]
    listed = [f"- {label}: {text}" for text, label in machines.items()]
    return [*markdown(header, cells), "", "Machines (each at the start of its run):", "", *listed]


def missed(rows: list[Row], analysis: str) -> list[str]:
    """The figures whose goal is missed, each with the analysis section that reads it."""
    cells = [
        [
            row.figure,
            row.ours,
            row.peer,
            row.ratio_text,
            row.goal.shown if row.goal else "",
            f"[{row.topic}]({analysis}#{anchor(row.topic)})" if row.topic else "",
        ]
        for row in rows
        if row.met is False
    ]
    if not cells:
        return ["None."]
    return markdown(["figure", "ours", "peer", "ratio", "goal", "why"], cells)


def provenance(run: dict | None) -> list[str]:
    """Which ``benchmarks.run`` commands produced the files, on which machines."""
    lines = []
    for index, entry in enumerate((run or {}).get("runs", [])):
        minutes = ", ".join(f"{k} {v / 60:.1f} min" for k, v in entry["steps"].items())
        lines.append(
            f"{'Produced by' if index == 0 else 'Then'} `{entry['command']}` (mode "
            f"{entry['mode']}, {entry['seconds'] / 60:.1f} min wall: {minutes}; "
            f"{entry['machine']})."
        )
    return lines


def sources(found: dict[str, dict]) -> list[str]:
    """Each result file's command, and what it says it measured, quoted as recorded."""
    lines = []
    for name, data in found.items():
        lines.append(f"- `{name}`: `{data['command']}`")
        lines += [
            f"  - {key}: {data[key]}" for key in DESCRIPTIONS if isinstance(data.get(key), str)
        ]
    return lines


def render(directory: Path, quality: Path) -> str:
    """The whole summary of the result files in ``directory`` (quality reports: ``quality``)."""
    rows: list[Row] = []
    tables: list[Table] = []
    found: dict[str, dict] = {}
    for section in SECTIONS:
        root = quality if section.committed else directory
        data = [load(root / name) for name in section.sources]
        if data[0] is None:
            continue
        found.update({name: d for name, d in zip(section.sources, data, strict=True) if d})
        part = section.build(*data)
        rows += part.rows
        tables += part.tables
    machines = {}
    for row in rows:
        if row.machine and row.machine not in machines:
            machines[row.machine] = f"m{len(machines) + 1}"
    analysis = Path(os.path.relpath(ANALYSIS, directory)).as_posix()
    lines = [
        "# Benchmark summary",
        "",
        *provenance(load(directory / "run.json")),
        "",
        "Rendered from the JSON files by `python -m benchmarks.summary`; each figure comes",
        "from the latest run of its step. What the figures mean and why goals are missed:",
        f"[analysis.md]({analysis}), written by hand.",
        "",
        *headline(rows, machines),
        "",
        "## Goals missed",
        "",
        *missed(rows, analysis),
    ]
    for table in tables:
        lines += ["", f"### {table.title}", "", *markdown(table.header, table.rows)]
    lines += ["", "## Sources", "", *sources(found)]
    return "\n".join(lines) + "\n"


def write(directory: Path, quality: Path | None = None) -> Path:
    """Write ``directory/summary.md``; quality reports come from ``quality`` (default: the same)."""
    path = directory / "summary.md"
    path.write_text(render(directory, quality or directory))
    return path
