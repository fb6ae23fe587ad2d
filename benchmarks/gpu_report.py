"""The GPU suite's table, rendered from one run's ``gpu.json`` only.

Rows are in the summary's columns (figure | ours | peer | ratio | goal | met?
| machine); goals are checked here, from the numbers, and the machine cell
names the GPU. ``python3 -m benchmarks.gpu`` prints the table after a run,
and ``benchmarks.summary`` adds a committed full run's table to
``summary.md`` (a tiny smoke run's figures mean nothing and are left out).
Only the standard library is imported: this runs on the GPU machine too.
"""

HEADER = ["figure", "ours", "peer", "ratio", "goal", "met?", "machine"]
ENCODER_GOAL = 1.3
MFU_GOAL = 0.5
COSINE_GOAL = 0.99


def _met(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def _rate(value: float, unit: str = "tok/s") -> str:
    return f"{value:,.0f} {unit}"


def _ok(section: dict | None) -> bool:
    return bool(section) and section.get("status") == "ok"


def _encoder(data: dict) -> list[list[str]]:
    runs = data["runs"]
    ours = next(name for name in runs if name.startswith("ours"))
    peer = next(name for name in runs if name.startswith("peer"))
    texts = sum(data["texts"].values())
    figure = (
        f"GPU encoder throughput, speedup (peer time / ours): ML-100K item + user texts "
        f"({texts:,}), MiniLM shape, random weights, {data['dtype'].removeprefix('torch.')}"
    )
    rows = [
        [
            f"{figure}; ours at {ours.rsplit('_', 1)[1]} tokens per batch, peer batch "
            f"{peer.rsplit('_', 1)[1]}",
            f"{runs[ours]['total_seconds']:.3f} s ({_rate(runs[ours]['tokens_per_second'])})",
            f"{runs[peer]['total_seconds']:.3f} s (sentence-transformers)",
            f"{data['speedup_defaults']:.2f}",
            f"speedup >= {ENCODER_GOAL}",
            _met(data["speedup_defaults"] >= ENCODER_GOAL),
        ]
    ]
    best_ours = min((v["total_seconds"], k) for k, v in runs.items() if k.startswith("ours"))
    best_peer = min((v["total_seconds"], k) for k, v in runs.items() if k.startswith("peer"))
    rows.append(
        [
            f"{figure}; each side at its best setting ({best_ours[1]}, {best_peer[1]})",
            f"{best_ours[0]:.3f} s",
            f"{best_peer[0]:.3f} s (sentence-transformers)",
            f"{data['speedup_best']:.2f}",
            "none set",
            "—",
        ]
    )
    return rows


def _decoders(data: dict, peak: dict, focus: str) -> list[list[str]]:
    rows = []
    for shape, entry in data.items():
        if not isinstance(entry, dict) or "budgets" not in entry:
            continue
        measured = {b: v for b, v in entry["budgets"].items() if v.get("runtime_mfu")}
        if not measured:
            continue
        budget, best = max(measured.items(), key=lambda item: item[1]["runtime_mfu"])
        goal = shape == focus
        rows.append(
            [
                f"{shape} shape (random weights, {entry['dtype'].removeprefix('torch.')}, "
                "last-token pooling), model FLOP "
                f"utilisation of EncoderRuntime (2 x {entry['matmul_parameters'] / 1e9:.2f} B "
                f"matmul parameters per token / measured peak), best of budgets "
                f"{', '.join(map(str, entry['budgets']))}: {budget}",
                f"{_rate(best['runtime_tokens_per_second'])}, forward only "
                f"{_rate(best['forward_tokens_per_second'])} (MFU {best['forward_mfu']:.2f})",
                f"{peak['tflops']:,.0f} TFLOP/s ({peak['dtype'].removeprefix('torch.')} "
                f"{peak['n']}-cube matmul)",
                f"{best['runtime_mfu']:.2f}",
                f"MFU >= {MFU_GOAL}" if goal else "none set",
                _met(best["runtime_mfu"] >= MFU_GOAL) if goal else "—",
            ]
        )
    return rows


def _packed(data: dict) -> list[str]:
    return [
        f"Padding-free (packed) / padded batches, {data['shape']} shape, forward only, "
        f"{data['budget']:,} tokens per batch; {data['method']}",
        f"{_rate(data['packed_tokens_per_second'])}, min cosine to padded {data['min_cosine']:.4f}",
        f"{_rate(data['padded_tokens_per_second'])} (padding {data['padded_padding_ratio']:.1%})",
        f"{data['speedup']:.2f}",
        f"outputs equal (cosine >= {COSINE_GOAL})",
        _met(data["equal_within_tolerance"]),
    ]


def _compiled(data: dict) -> list[str]:
    eager, compiled = data["eager"], data["compiled"]
    return [
        f"{data['shape']} shape with encode.compile (torch.compile, dynamic shapes), model "
        f"FLOP utilisation of EncoderRuntime at {data['budget']:,} tokens per batch; the "
        f"first call compiles for {data['first_call_seconds']:.0f} s",
        f"{_rate(compiled['runtime_tokens_per_second'])} (MFU {compiled['runtime_mfu']:.2f})",
        f"eager, same run: {_rate(eager['runtime_tokens_per_second'])} "
        f"(MFU {eager['runtime_mfu']:.2f})",
        f"{data['runtime_speedup']:.2f}",
        f"MFU >= {MFU_GOAL}",
        _met(compiled["runtime_mfu"] >= MFU_GOAL),
    ]


def _oom(data: dict, memory: float | None) -> list[str]:
    return [
        f"Out-of-memory back-off, {data['shape']} shape: {data['texts']:,} texts at a budget "
        f"of {data['requested_budget']:,} tokens per batch"
        + (f" on {memory:.0f} GiB" if memory else ""),
        f"settled at {data['settled_budget']:,} after {data['oom_retries']} halvings, "
        f"{_rate(data['tokens_per_second'])}",
        "the same texts at 16,384 (reference)",
        f"{data['min_cosine_vs_reference']:.4f}",
        f"backs off and matches (cosine >= {COSINE_GOAL})",
        _met(data["exercised"] and data["correct"]),
    ]


def _training(data: dict) -> list[list[str]]:
    return [
        [
            f"MARC training step, {name} shape, LoRA on the top {entry['lora_layers']} "
            f"layer(s), {entry['autocast']} autocast, {entry['users_per_step']} users x "
            f"{entry['pairs_per_user']} pairs per step",
            f"{entry['steps_per_second']:.2f} steps/s ({_rate(entry['tokens_per_second'])} "
            "through the adapted layers)",
            f"frozen pass (float32, once): {_rate(entry['frozen_pass_tokens_per_second'])}",
            "—",
            "none set",
            "—",
        ]
        for name, entry in data["backbones"].items()
    ]


def rows_of(figures: dict) -> list[list[str]]:
    """The table cells of one suite run (without the machine column)."""
    sections = figures["sections"]
    focus = "qwen2-1.5b" if figures.get("mode") == "full" else "tiny"
    rows = []
    if _ok(sections.get("encoder")):
        rows += _encoder(sections["encoder"])
    if _ok(sections.get("peak")) and sections.get("decoders"):
        rows += _decoders(sections["decoders"], sections["peak"], focus)
    if _ok(sections.get("packed")):
        rows.append(_packed(sections["packed"]))
    if _ok(sections.get("compiled")):
        rows.append(_compiled(sections["compiled"]))
    if _ok(sections.get("oom")):
        rows.append(_oom(sections["oom"], figures["environment"].get("memory_gib")))
    if _ok(sections.get("training")):
        rows += _training(sections["training"])
    for name, section in sections.items():
        if section.get("status", "ok") not in ("ok", "running"):
            rows.append([f"GPU suite section `{name}`", section["status"], "", "", "", "—"])
    return rows


def machine(figures: dict) -> str:
    env = figures["environment"]
    return f"{env.get('gpu')} (torch {env['torch']}, CUDA {env['cuda']})"


def table(figures: dict) -> list[str]:
    cells = [[*row, machine(figures)] for row in rows_of(figures)]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
