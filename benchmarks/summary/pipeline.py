"""Rows and tables of the end-to-end runs: ``refresh_cost.json`` and ``scaling.json``.

Both record, per run, wall seconds and the tracer's phases
(:class:`marc_batch.tracing.Tracer`); the tables lay those out so that the
analysis can point at where the time and the memory go.
"""

from benchmarks.summary.table import Goal, Part, Row, Table, mib, percent, seconds, share

OVERHEAD = Goal("<=", 1.10, "<= 1.10")
BACKFILL = Goal("<=", 0.05, "<= 0.05")
DRIVER_RSS = Goal("<=", 1.2, "<= 1.2")
INGEST_PHASES = {
    "ingest_partition": "partition by shard, cut into parts",
    "ingest_validate": "validate part by part",
    "ingest_split": "split (DuckDB, whole log)",
    "ingest_render": "render texts part by part",
    "ingest": "ingestion",
}

# The run's own phases in the order they run; the nested ones run inside "run_jobs".
PHASES = {
    "ingest": "ingest",
    "plan_change": "change plan",
    "stage_shards": "stage shards",
    "run_jobs": "encode jobs",
    "collect_shards": "collect shards",
    "publish_index": "index build",
    "commit": "commit",
}
NESTED = {
    "load_encoder": "load encoder (in encode jobs)",
    "encode_rows": "encoder (in encode jobs)",
}


def encoding(run: dict) -> float:
    """Seconds spent in the encoder itself, shard by shard."""
    return run["phases"].get("encode_rows", {}).get("seconds", 0.0)


def phase_table(title: str, runs: dict[str, dict]) -> Table:
    """Seconds per phase and share of each run's wall time, one column per run."""
    rows = [["wall time", *(seconds(run["seconds"]) for run in runs.values())]]
    for name, label in {**PHASES, **NESTED}.items():
        if not any(name in run["phases"] for run in runs.values()):
            continue
        cells = []
        for run in runs.values():
            spent = run["phases"].get(name, {}).get("seconds")
            cells.append(
                "—" if spent is None else f"{seconds(spent)} ({share(spent, run['seconds'])})"
            )
        rows.append([label, *cells])
    return Table(title, ["phase", *runs], rows)


def backfill_row(figure: str, backfill: float, refresh: float, machine: str) -> Row:
    """A backfill's wall time against a full refresh of the same catalogue."""
    return Row(
        figure,
        seconds(backfill),
        f"{seconds(refresh)} (refresh)",
        backfill / refresh,
        3,
        BACKFILL,
        machine,
        topic="Backfill cost",
    )


def refresh_cost(data: dict) -> Part:
    """Refresh against the pure encoder and backfill against refresh, on one catalogue."""
    best, where, machine = data["best"], data["short"], data["machine"]
    refresh, pure, backfill = best["refresh"], best["pure"], best["backfill"]
    rows = [
        Row(
            f"Refresh overhead (refresh wall time / pure encoder time, same texts; {where})",
            seconds(data["refresh_seconds"]),
            f"{seconds(data['pure_encode_seconds'])} (EncoderRuntime.encode)",
            data["overhead_ratio"],
            3,
            OVERHEAD,
            machine,
            topic="Refresh overhead",
        ),
        backfill_row(
            f"Backfill cost (backfill of 1% new items, {data['backfill_items']:,}, / full "
            f"refresh; {where})",
            data["backfill_seconds"],
            data["refresh_seconds"],
            machine,
        ),
    ]
    timed = [
        ("wall time (best run)", refresh["seconds"], pure["seconds"]),
        ("CPU time, all threads", refresh["cpu_seconds"], pure["cpu_seconds"]),
        ("the encoder itself", encoding(refresh), pure["seconds"]),
    ]
    padding = []
    for entity, theirs in pure.get("entities", {}).items():
        ours = refresh["encode"][entity]
        timed.append((f"{entity}s: encoder", ours["seconds"], theirs["seconds"]))
        padding.append((f"{entity}s: padding", ours["padding_ratio"], theirs["padding_ratio"]))
    compared = [[label, seconds(x), seconds(y), f"{x / y:.3f}"] for label, x, y in timed]
    compared += [[label, percent(x), percent(y), ""] for label, x, y in padding]
    repeats = [
        ", ".join(seconds(wall) for wall in data["runs"][name]) for name in ("refresh", "pure")
    ]
    compared.append(["wall times of the repeats", *repeats, ""])
    header = ["", "refresh (shard by shard)", "pure encoder (one call per entity)", "ratio"]
    tables = [
        Table(f"Refresh against the pure encoder ({where})", header, compared),
        phase_table(f"Where the time goes ({where})", {"refresh": refresh, "backfill": backfill}),
    ]
    return Part(rows, tables)


def projected_ratio(entry: dict, size: int, rate: float) -> float:
    """The backfill ratio with encoding at ``rate`` items/s and everything else as measured."""
    refresh, backfill = entry["refresh"], entry["backfill"]
    back = backfill["seconds"] - encoding(backfill) + backfill["added"] / rate
    full = refresh["seconds"] - encoding(refresh) + size / rate
    return back / full


def breakeven_rate(entry: dict, size: int) -> float | None:
    """The encoder rate (items/s) above which the backfill ratio misses its goal."""
    refresh, backfill = entry["refresh"], entry["backfill"]
    margin = (backfill["seconds"] - encoding(backfill)) - BACKFILL.limit * (
        refresh["seconds"] - encoding(refresh)
    )
    return (BACKFILL.limit * size - backfill["added"]) / margin if margin > 0 else None


def item_rate(refresh_cost: dict | None) -> float | None:
    """Items per second of the pure encoder in ``refresh_cost.json`` (MiniLM in full runs)."""
    entities = (refresh_cost or {}).get("best", {}).get("pure", {}).get("entities")
    return entities["item"]["texts"] / entities["item"]["seconds"] if entities else None


def backfill_table(sizes: dict[int, dict], rate: float | None) -> Table:
    """Each size's backfill: what it added, which index it built, and the projection."""
    header = ["items", "added", "refresh index", "backfill index", "in place", "encoder", "ratio"]
    if rate:
        header += [f"ratio at {rate:.0f} items/s (projected)", "goal missed above (items/s)"]
    rows = []
    for size, entry in sizes.items():
        refresh, backfill = entry["refresh"], entry["backfill"]
        row = [
            f"{size:,}",
            f"{backfill['added']:,}",
            str(refresh.get("index")),
            str(backfill.get("index")),
            "yes" if backfill.get("index_updated") else "no",
            seconds(encoding(backfill)),
            f"{backfill['seconds'] / refresh['seconds']:.3f}",
        ]
        if rate:
            even = breakeven_rate(entry, size)
            row += [f"{projected_ratio(entry, size, rate):.3f}", f"{even:,.0f}" if even else "—"]
        rows.append(row)
    title = "Backfills (projection: encoding at the pure encoder's item rate of refresh_cost.json"
    return Table(
        title + ", every other phase as measured; arithmetic, not a measurement)", header, rows
    )


def rss_table(small: tuple[int, dict], large: tuple[int, dict]) -> Table:
    """Peak RSS per phase at the smallest and the largest size (MiB), and their ratio."""
    a, b = small[1]["refresh"], large[1]["refresh"]
    pairs = [
        (label, a["phases"][name]["peak_rss_mib"], b["phases"][name]["peak_rss_mib"])
        for name, label in PHASES.items()
        if name in a["phases"] and name in b["phases"]
    ]
    pairs += [
        ("process at start (after imports)", a["rss_start_mib"], b["rss_start_mib"]),
        ("process peak (ru_maxrss)", a["peak_rss_mib"], b["peak_rss_mib"]),
        (
            "process peak above start",
            a["peak_rss_mib"] - a["rss_start_mib"],
            b["peak_rss_mib"] - b["rss_start_mib"],
        ),
    ]
    rows = [[label, f"{x:,}", f"{y:,}", f"{y / x:.2f}"] for label, x, y in pairs]
    header = ["peak RSS (MiB)", f"{small[0]:,} items", f"{large[0]:,} items", "ratio"]
    return Table("Where the memory goes (refresh phases, sampled every 5 ms)", header, rows)


def scaling(data: dict, refresh_cost: dict | None) -> Part:
    """Time and memory from the smallest to the largest catalogue, and each backfill.

    ``refresh_cost`` (optional) gives the real encoder's rate for the projection.
    """
    sizes = {
        int(size): entry for size, entry in sorted(data["sizes"].items(), key=lambda s: int(s[0]))
    }
    (small, a), (large, b) = next(iter(sizes.items())), list(sizes.items())[-1]
    machine = data["machine"]
    rows = [
        Row(
            f"Refresh time per 100k items, {large:,} / {small:,} items (tiny BERT)",
            f"{seconds(b['seconds_per_100k_items'])} at {large:,}",
            f"{seconds(a['seconds_per_100k_items'])} at {small:,}",
            data["time_per_100k_ratio"],
            2,
            machine=machine,
        ),
    ]
    memory = [
        ("peak_rss_mib", "rss_ratio", "Peak RSS"),
        ("peak_anonymous_mib", "anonymous_ratio", "Peak anonymous memory (RSS less mapped files)"),
    ]
    rows += [
        Row(
            f"{label} of the refresh process, {large:,} / {small:,} items (tiny BERT)",
            mib(b[key]),
            mib(a[key]),
            data[ratio],
            2,
            DRIVER_RSS,
            machine,
            topic="Peak memory",
        )
        for key, ratio, label in memory
        if key in a and key in b
    ]
    backfilled = {size: entry for size, entry in sizes.items() if "backfill" in entry}
    rows += [
        backfill_row(
            f"Backfill cost (1% new items / full refresh), {size:,} items (tiny BERT)",
            entry["backfill"]["seconds"],
            entry["refresh"]["seconds"],
            machine,
        )
        for size, entry in backfilled.items()
    ]
    runs = {}
    for size, entry in sizes.items():
        runs[f"refresh, {size:,}"] = entry["refresh"]
        if "backfill" in entry:
            runs[f"backfill, {size:,}"] = entry["backfill"]
    tables = [
        phase_table("Where the time goes (tiny BERT, generated catalogues)", runs),
        rss_table((small, a), (large, b)),
    ]
    if backfilled:
        tables.append(backfill_table(backfilled, item_rate(refresh_cost)))
    return Part(rows, tables)


def ingest_users(data: dict, before: dict | None) -> Part:
    """Ingestion's peak memory from the smallest to the largest user count, and against the
    code before parts on the same 1M-user catalogue (``before``: ``bahe_users_1m.json``)."""
    sizes = sorted(data["sizes"].items(), key=lambda s: int(s[0]))
    (small, _), (large, b) = sizes[0], sizes[-1]
    above = {size: run["peak_rss_mib"] - run["rss_start_mib"] for size, run in sizes}
    rows = [
        Row(
            f"Ingestion peak RSS above start, {int(large):,} / {int(small):,} users "
            f"({data['items']:,} items, 20-100 behaviours each)",
            mib(above[large]),
            mib(above[small]),
            above[large] / above[small],
            2,
            DRIVER_RSS,
            data["machine"],
            topic="Peak memory",
        )
    ]
    earlier = (before or {}).get("sizes", {}).get(large, {}).get("bahe", {}).get("refresh")
    if earlier:
        peak = earlier["phases"]["ingest"]["peak_rss_mib"]
        rows.append(
            Row(
                f"Ingestion peak RSS, {int(large):,} users: by part / whole shards (before parts)",
                mib(b["phases"]["ingest"]["peak_rss_mib"]),
                mib(peak),
                b["phases"]["ingest"]["peak_rss_mib"] / peak,
                2,
                machine=data["machine"],
                topic="Peak memory",
            )
        )
    cells = [
        [
            label,
            *(
                f"{seconds(run['phases'][name]['seconds'])}, "
                f"{run['phases'][name]['rss_in_mib']:,.0f} -> "
                f"{run['phases'][name]['peak_rss_mib']:,.0f}"
                for _, run in sizes
            ),
        ]
        for name, label in INGEST_PHASES.items()
    ]
    header = ["phase (seconds, RSS MiB on entry -> peak)", *(f"{int(s):,} users" for s, _ in sizes)]
    tables = [Table("Where ingestion's memory goes, by part", header, cells)]
    if "tables" in b:  # rows in = accepted + quarantined, with the reasons
        counted = [
            [
                f"{name}, {int(size):,} users",
                f"{t['rows_in']:,}",
                f"{t['accepted']:,}",
                f"{t['quarantined']:,}",
                ", ".join(f"{reason} {n:,}" for reason, n in sorted(t["reasons"].items())),
            ]
            for size, run in sizes
            for name, t in run["tables"].items()
        ]
        header = ["table", "rows in", "accepted", "quarantined", "reasons"]
        tables.append(
            Table("Bad rows at scale: every row accepted or quarantined", header, counted)
        )
    return Part(rows, tables)
