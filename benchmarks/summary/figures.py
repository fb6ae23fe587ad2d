"""Rows of the benchmarks that measure one component: encoders, storage, FAISS, quality, store.

BAHE's figures are in ``bahe``.

Labels say what was compared; descriptions the JSON records as prose (the
model, the vectors, the queries) are quoted whole under Sources, never
taken apart here.
"""

from benchmarks import gpu_report
from benchmarks.summary.table import Goal, Part, Row, Table, percent, seconds, share

SPEEDUP = Goal(">=", 1.3, "speedup >= 1.3")
RECALL = Goal(">=", 0.95, ">= 0.95")
# Methods MARC is compared with, and those among them that read the final layer.
BASELINES = ("pca-final", "pca-best-mid", "proj-final", "marc-no-info")
FINAL_LAYER = ("pca-final", "proj-final")


def encoder(data: dict) -> Part:
    """Our runtime against sentence-transformers, in total and per entity."""
    entities = data["entities"]
    ours = sum(e["ours_seconds"] for e in entities.values())
    peer = sum(e["peer_seconds"] for e in entities.values())
    texts = sum(e["texts"] for e in entities.values())
    row = Row(
        f"Encoder throughput, speedup (peer time / ours): ML-100K item + user texts, MiniLM "
        f"({texts:,} texts)",
        seconds(ours),
        f"{seconds(peer)} (sentence-transformers)",
        data["speedup"],
        2,
        SPEEDUP,
        data["machine"],
        topic="Encoder throughput",
    )
    header = ["entity", "texts", "tokens per text", "padding (ours)", "ours", "peer", "speedup"]
    rows = [
        [
            entity,
            f"{e['texts']:,}",
            f"{e['tokens'] / e['texts']:.0f}",
            percent(e["padding_ratio"]),
            f"{seconds(e['ours_seconds'])} ({share(e['ours_seconds'], ours)} of ours)",
            seconds(e["peer_seconds"]),
            f"{e['speedup']:.2f}",
        ]
        for entity, e in entities.items()
    ]
    title = f"Encoder throughput per entity ({data['model']}; peer: {data['peer']})"
    return Part([row], [Table(title, header, rows)])


def storage(data: dict) -> Part:
    """Snapshot bytes per row against the raw hidden state, per store and dtype."""
    rows = []
    raw = data["raw_hidden_state_bytes"]
    for label, store in data["stores"].items():
        for dtype in ("float32", "float16"):
            entities = store[dtype].values()
            total = sum(e["bytes"] for e in entities)
            count = sum(e["rows"] for e in entities)
            column = sum(e["embedding_column_bytes_per_row"] * e["rows"] for e in entities)
            rows.append(
                Row(
                    f"Bytes per stored embedding / raw fp32 hidden state, {label} snapshot "
                    f"({count:,} rows, k = {store['k']}), {dtype}",
                    f"{total / count:.1f} B/row ({column / count:.1f} B the vector itself)",
                    f"{raw:,} B ({data['raw_hidden_state']})",
                    total / count / raw,
                    3,
                    machine=data["machine"],
                )
            )
    return Part(rows)


def faiss(data: dict) -> Part:
    """Our tuned index against exact search: recall, queries per second, build time."""
    ours, peer, machine = data["ours"], data["peer"], data["machine"]
    return Part(
        [
            Row(
                f"FAISS recall@10, {ours['index']} / exact Flat",
                f"{ours['recall_at_10']:.4f} (nprobe {ours['nprobe']})",
                "1.0000 (Flat)",
                ours["recall_at_10"],
                3,
                RECALL,
                machine,
                topic="FAISS",
            ),
            Row(
                "FAISS queries/s, ours / Flat",
                f"{ours['queries_per_second']:,}",
                f"{peer['queries_per_second']:,}",
                data["speedup"],
                1,
                machine=machine,
            ),
            Row(
                "FAISS build seconds, ours (train, add, tune nprobe) / Flat (add)",
                seconds(ours["build_seconds"]),
                seconds(peer["build_seconds"]),
                ours["build_seconds"] / max(peer["build_seconds"], 1e-3),
                0,
                machine=machine,
            ),
        ]
    )


def quality(report: dict) -> Part:
    """MARC against the best baseline and the best final-layer one, from an evaluation report."""
    methods, k = report["methods"], report["k"]
    marc = methods["marc"]["auc_mean"]
    rows = []
    for peers, goal in ((BASELINES, "best baseline"), (FINAL_LAYER, "best final-layer baseline")):
        peer = max(peers, key=lambda m: methods[m]["auc_mean"])
        value = methods[peer]["auc_mean"]
        rows.append(
            Row(
                f"Test AUC, ML-100K, MiniLM, k = {k}: MARC / {goal} (`{peer}`)",
                f"{marc:.4f}",
                f"{value:.4f}",
                marc / value,
                3,
                Goal(">=", 1.0, f">= {goal}"),
                topic="Quality",
            )
        )
    # The frozen backbone's best layer and its final one: the layer MARC's z is built on.
    frozen = report["probe"]["frozen"]
    probed = {p["layer"]: p for p in (max(frozen, key=lambda p: p["auc_mean"]), frozen[-1])}
    auc = [[name, f"{m['auc_mean']:.4f}", f"{m['auc_std']:.4f}"] for name, m in methods.items()]
    auc += [
        [f"frozen backbone, layer {layer} (probe)", f"{p['auc_mean']:.4f}", f"{p['auc_std']:.4f}"]
        for layer, p in sorted(probed.items())
    ]
    seeds = ", ".join(str(seed) for seed in report["seeds"])
    title = f"Test AUC per method, k = {k} (mean and std over seeds {seeds})"
    return Part(rows, [Table(title, ["method", "test AUC", "std"], auc)])


def lift(report: dict, label: str = "") -> Part:
    """MARC's z as features of the id-based DCN-V2: its gain over the id model, in seed stds, and
    against the best baseline, per protocol (``report['lift']``). ``label`` names the encoder."""
    k, rows, tables = report["k"], [], []
    for protocol, figures in report["lift"].items():
        base, methods = figures["baseline"], figures["methods"]
        marc = methods["marc"]
        where = f"ML-100K, MiniLM, k = {k}, {protocol} protocol{label}"
        rows.append(
            Row(
                f"Lift: MARC's test AUC gain over the id model / its seed std ({where})",
                f"+{marc['auc_gain_mean']:.4f} ± {marc['auc_gain_std']:.4f}",
                f"{base['auc_mean']:.4f} (id model)",
                marc["auc_gain_mean"] / marc["auc_gain_std"],
                1,
                Goal(">=", 2.0, "gain >= 2 std"),
                topic="Lift",
            )
        )
        peers = [name for name in methods if name != "marc"]
        best = max(peers, key=lambda name: methods[name]["auc_gain_mean"])
        rows.append(
            Row(
                f"Lift: MARC's gain / best baseline's (`{best}`) ({where}; baselines run: "
                f"{', '.join(peers)})",
                f"+{marc['auc_gain_mean']:.4f}",
                f"+{methods[best]['auc_gain_mean']:.4f}",
                marc["auc_gain_mean"] / methods[best]["auc_gain_mean"],
                2,
                Goal(">=", 1.0, ">= best baseline"),
                topic="Lift",
            )
        )
        cells = [["ids + side (baseline)", f"{base['auc_mean']:.4f} ± {base['auc_std']:.4f}"]]
        cells[0] += ["-", "-", f"{base['valid_auc_mean']:.4f}"]
        cells += [
            [
                f"+ `{name}` z",
                f"{m['auc_mean']:.4f} ± {m['auc_std']:.4f}",
                f"+{m['auc_gain_mean']:.4f} ± {m['auc_gain_std']:.4f}",
                f"{m['rela_impr_mean']:+.2f}%",
                f"{m['valid_auc_mean']:.4f}",
            ]
            for name, m in methods.items()
        ]
        seeds = ", ".join(str(seed) for seed in report["seeds"])
        title = f"Lift in an id-based DCN-V2 ({where}; CTR seeds {seeds})"
        header = ["features", "test AUC", "AUC gain", "RelaImpr", "valid AUC"]
        tables.append(Table(title, header, cells))
    return Part(rows, tables)


def lift_across_k(small: dict, large: dict | None) -> Part:
    """MARC's lift at the small k against `pca-final`'s at the large one, per protocol both ran:
    does compression buy MARC a quarter of the width?"""
    rows: list[Row] = []
    if large is None:
        return Part(rows)
    for protocol, figures in small["lift"].items():
        if protocol not in large["lift"]:
            continue
        marc = figures["methods"]["marc"]
        pca = large["lift"][protocol]["methods"]["pca-final"]
        rows.append(
            Row(
                f"Lift: MARC's gain at k = {small['k']} / `pca-final`'s at k = {large['k']} "
                f"(ML-100K, MiniLM, {protocol} protocol)",
                f"+{marc['auc_gain_mean']:.4f} ± {marc['auc_gain_std']:.4f}",
                f"+{pca['auc_gain_mean']:.4f} ± {pca['auc_gain_std']:.4f}",
                marc["auc_gain_mean"] / pca["auc_gain_mean"],
                2,
                Goal(">=", 1.0, f">= pca-final at k = {large['k']}"),
                topic="Lift",
            )
        )
    return Part(rows)


def validate(data: dict) -> Part:
    """Vectorised validation against per-row pydantic; the goal is on our own seconds."""
    goal = data["goal_seconds"]
    row = Row(
        f"Read + validate {data['rows']:,} catalogue rows from Parquet, speedup (peer time / ours)",
        seconds(data["read_and_validate_seconds"]),
        f"{seconds(data['peer_seconds'])} (per-row pydantic, scaled)",
        data["speedup_vs_peer"],
        1,
        Goal("<=", goal, f"<= {goal:.0f} s"),
        data["machine"],
        value=data["read_and_validate_seconds"],
    )
    return Part([row])


def store(data: dict) -> Part:
    """Bytes a snapshot spends per embedding against the raw vector."""
    write, dtype = data["write"], data["dtype"]
    row = Row(
        f"Snapshot bytes per embedding / raw, {data['rows']:,} x {data['k']} random "
        f"unit vectors, {dtype}",
        f"{write['bytes_per_embedding']} B ({seconds(write['seconds'])} to write)",
        f"{write['raw_bytes_per_embedding']} B (raw {dtype} vector)",
        write["bytes_per_embedding"] / write["raw_bytes_per_embedding"],
        2,
        machine=data["machine"],
    )
    return Part([row])


def gpu(data: dict, title: str = "GPU suite (benchmarks/GPU.md)") -> Part:
    """A GPU suite run's table (benchmarks/GPU.md) as its report renders it; smoke runs add
    none. ``title`` tells apart runs of some sections only."""
    if data.get("mode") != "full":
        return Part()
    rows = [[*row, gpu_report.machine(data)] for row in gpu_report.rows_of(data)]
    return Part(tables=[Table(title, gpu_report.HEADER, rows)])
