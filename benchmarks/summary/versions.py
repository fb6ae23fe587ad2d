"""Rows of the benchmarks that span snapshot versions: history export, drift, compatibility.

``history_1m.json`` and ``drift_*.json`` time a store's own work over many
rows (each phase in a fresh process, so its peak RSS is its own);
``compatibility/*.json`` is a model change as the ranking team meets it,
whose record is the manifest's own (``marc_batch.evaluate.compatibility``).
"""

from benchmarks.summary.table import Goal, Part, Row, Table, mib, percent, seconds

# The figures of a compatibility record, per split, as the summary names them.
AUCS = {
    "id-baseline": "AUC, id model (no vectors)",
    "previous": "AUC, previous vectors (what the CTR model was trained on)",
    "mapped": "AUC, new vectors mapped to the previous space (orthogonal map)",
    "mapped-ridge": "AUC, new vectors through the ridge map (for information)",
    "unmapped": "AUC, new vectors unmapped",
}
KEPT = ("mapped", "mapped-ridge", "unmapped")
SPLITS = ("valid", "test")


def history(data: dict) -> Part:
    """The export of every version against building the same store, in time and in memory."""
    build, export, machine = data["build"], data["export"], data["machine"]
    where = f"{data['rows']:,} ids x {data['versions']} versions, k = {data['k']}"
    rows = [
        Row(
            f"History export seconds / store build seconds ({where})",
            f"{seconds(export['seconds'])} ({export['rows_per_second']:,} intervals/s)",
            f"{seconds(build['seconds'])} (build)",
            export["seconds"] / build["seconds"],
            2,
            machine=machine,
        ),
        Row(
            f"Peak RSS of the history export / of the store build ({where})",
            mib(export["peak_rss_mib"]),
            f"{mib(build['peak_rss_mib'])} (build)",
            export["peak_rss_mib"] / build["peak_rss_mib"],
            2,
            machine=machine,
        ),
    ]
    cells = [
        ["intervals written (checked against the changes made)", f"{export['intervals']:,}"],
        ["bytes written", f"{export['bytes_written']:,}"],
        ["bytes per interval", f"{export['bytes_written'] / export['intervals']:.0f}"],
    ]
    return Part(rows, [Table(f"History export ({where})", ["figure", "value"], cells)])


def drift_columns(data: dict) -> list[str]:
    """One size's statistics run: time, memory against the vectors, and the fit's accuracy."""
    build, described = data["build"], data["describe"]
    above = described["peak_rss_mib"] - described["rss_before_mib"]
    return [
        seconds(build["seconds"]),
        seconds(described["seconds"]),
        mib(above),
        mib(data["vectors_of_both_snapshots_mib"]),
        f"{described['fitted_on']:,}",
        f"{described['residual_procrustes']:.1e}",
        f"{described['max_weight_error']:.1e}",
        f"{described['neighbour_overlap_mean']:.3f} ({described['sampled']} sampled)",
    ]


def drift(large: dict, small: dict | None) -> Part:
    """Statistics and the alignment fit at the largest size (and growth from ``small``)."""
    described, machine = large["describe"], large["machine"]
    items = f"{large['rows']:,} items, k = {large['k']}"
    rows = [
        Row(
            f"Snapshot statistics + alignment fit, peak RSS above the interpreter / both "
            f"snapshots' vectors ({items})",
            mib(described["peak_rss_mib"] - described["rss_before_mib"]),
            f"{mib(large['vectors_of_both_snapshots_mib'])} (float32)",
            (described["peak_rss_mib"] - described["rss_before_mib"])
            / large["vectors_of_both_snapshots_mib"],
            2,
            machine=machine,
        )
    ]
    sizes = [large] if small is None else [small, large]
    if small is not None:
        rows.append(
            Row(
                f"Snapshot statistics + alignment fit seconds, {large['rows']:,} / "
                f"{small['rows']:,} items (k = {large['k']})",
                seconds(described["seconds"]),
                seconds(small["describe"]["seconds"]),
                described["seconds"] / small["describe"]["seconds"],
                2,
                machine=machine,
            )
        )
    labels = [
        "build both snapshots",
        "statistics + alignment fit",
        "peak RSS above the interpreter",
        "both snapshots' vectors",
        "alignment fitted on (items)",
        "Procrustes residual",
        "largest weight error against the rotation",
        "neighbour overlap@10",
    ]
    columns = [drift_columns(data) for data in sizes]
    cells = [[label, *(column[i] for column in columns)] for i, label in enumerate(labels)]
    header = ["", *(f"{data['rows']:,} items" for data in sizes)]
    title = "Snapshot statistics over a model change (the second snapshot: the first, rotated)"
    return Part(rows, [Table(title, header, cells)])


def fraction(value: float | None) -> str:
    return "—" if value is None else percent(value)


def auc(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.4f}"


def kept_row(figures: dict, label: str, machine: str) -> Row:
    """The test lift the mapped vectors keep; with no lift to keep, their AUC against the previous.

    The goal is on test; the gate reads valid (the detail table shows both).
    """
    kept, least = figures["test_kept_lift_mapped"], figures["min_kept_lift"]
    mapped, previous = figures["test_auc_mapped"], figures["test_auc_previous"]
    if kept is None:
        return Row(
            f"Compatibility, test AUC of the new vectors mapped / previous vectors, no lift over "
            f"the id model to keep ({label})",
            f"{mapped:.4f}",
            f"{previous:.4f} (previous)",
            mapped / previous,
            3,
            Goal(">=", 1.0, ">= 1 (no lift to keep)"),
            machine,
            topic="Compatibility",
        )
    return Row(
        f"Compatibility, test: share of the CTR model's lift over the id model kept by the new "
        f"vectors mapped ({label})",
        f"{percent(kept)} (AUC {mapped:.4f})",
        f"{previous:.4f} previous vectors, {figures['test_auc_id-baseline']:.4f} id model",
        kept,
        3,
        Goal(">=", least, f">= {least:.2f}"),
        machine,
        topic="Compatibility",
    )


def compatibility(data: dict, change: str) -> Part:
    """Lift kept by the new vectors on the previous model's CTR model; the gate's verdict.

    ``change`` says what differs between the two models. Inputs the record
    did not score (the ridge map in older records) are left out.
    """
    record = data["compatibility"]
    if record is None:
        return Part(
            tables=[
                Table(f"Compatibility, {change}", ["figure", "value"], [["gate", data["gate"]]])
            ]
        )
    figures = record["figures"]
    models = f"{change}: `{data['new_model']}` after `{data['previous_model']}`"
    label = f"ML-100K, MiniLM; {models}"
    cells = [
        [text, *(auc(figures[f"{s}_auc_{name}"]) for s in SPLITS)]
        for name, text in AUCS.items()
        if f"valid_auc_{name}" in figures
    ]
    cells += [
        [f"lift kept, {name}", *(fraction(figures[f"{s}_kept_lift_{name}"]) for s in SPLITS)]
        for name in KEPT
        if f"valid_kept_lift_{name}" in figures
    ]
    alignment = data.get("alignment") or {}
    least = figures["min_kept_lift"]
    verdict = [
        [
            f"verdict (valid, lift kept >= {percent(least)})",
            "compatible" if figures["compatible"] else "incompatible",
        ],
        ["promotion to prod", data["gate"]],
        ["alignment fitted on (ids)", f"{alignment.get('fitted_on', 0):,}"],
        *(
            [f"{kind} map's relative residual", f"{value:.3f}"]
            for kind, value in alignment.get("residual", {}).items()
        ),
        *([name.replace("_", " ") + " (s)", f"{value}"] for name, value in data["seconds"].items()),
    ]
    title = f"Compatibility, {models} (CTR model: {figures['protocol']} protocol)"
    return Part(
        [kept_row(figures, label, data["machine"])],
        [
            Table(title, ["", *SPLITS], cells),
            Table(f"Compatibility gate, {models}", ["figure", "value"], verdict),
        ],
    )
