"""BAHE's figures: user throughput on ML-100K, users at scale, quality against text users.

Quality is compared across training seeds: each seed's MARC encoder (BAHE or
text users, the same recipe otherwise) is scored by the lift evaluation's
DCN-V2 over 3 downstream seeds, and the summary takes the mean and standard
deviation of those per-seed means, so the spread shown is the encoder's.
"""

import statistics

from benchmarks.summary.table import Goal, Part, Row, Table, mib, percent, seconds

SPEEDUP = Goal(">=", 4.0, "speedup >= 4")
PROTOCOL = "leak-free"

# BAHE's sides in bahe_throughput.json, as the summary names them.
SIDES = {
    "peer": "`SentenceTransformer.encode` on the user texts",
    "text": "MARC, text users (`EncoderRuntime`)",
    "bahe_cold": "MARC, BAHE users, no stored behaviour vectors (a new model's first refresh)",
    "bahe_warm": "MARC, BAHE users, every behaviour vector stored (the next nightly refresh)",
}


def throughput(data: dict) -> Part:
    """BAHE users against sentence-transformers on the user texts, cold and warm."""
    sides, users = data["sides"], data["users"]
    peer = sides["peer"]
    rows = [
        Row(
            f"BAHE user encoding, speedup (peer time / ours), {state}: ML-100K users, MiniLM "
            f"({users:,} users)",
            f"{seconds(sides[name]['seconds'])} ({sides[name]['users_per_second']} users/s)",
            f"{seconds(peer['seconds'])} (sentence-transformers, "
            f"{peer['users_per_second']} users/s)",
            sides[name]["speedup_over_peer"],
            2,
            SPEEDUP,
            data["machine"],
            topic="BAHE user throughput",
        )
        for name, state in (
            ("bahe_cold", "cold (no stored behaviour vectors)"),
            ("bahe_warm", "warm (every behaviour vector stored)"),
        )
    ]
    text = sides["text"]["seconds"]
    header = ["users encoded by", "seconds", "users/s", "speedup over peer", "over text users"]
    cells = [
        [
            label,
            seconds(sides[name]["seconds"]),
            f"{sides[name]['users_per_second']}",
            f"{sides[name]['speedup_over_peer']:.2f}",
            f"{text / sides[name]['seconds']:.2f}",
        ]
        for name, label in SIDES.items()
    ]
    title = (
        f"User encoding, {users:,} ML-100K users ({data['distinct_behaviours']:,} distinct "
        f"behaviours, {data['bahe_sequence_positions']:,} BAHE sequence positions)"
    )
    return Part(rows, [Table(title, header, cells)])


def users(data: dict, large: dict | None = None) -> Part:
    """The user phase per user as users grow (tiny backbone), and the next night's cache share;
    ``large`` is a separate run at larger sizes (``bahe_users_1m.json``), merged in."""
    sizes = {**data["sizes"], **(large["sizes"] if large else {})}
    per_user = {size: result["bahe"]["user_phase_ms_per_user"] for size, result in sizes.items()}
    most, least = max(sizes, key=int), min(sizes, key=int)
    rows = [
        Row(
            f"BAHE user phase at scale, ms per user, {int(most):,} / {int(least):,} users "
            "(generated catalogue, tiny backbone)",
            f"{per_user[most]} ms",
            f"{per_user[least]} ms",
            per_user[most] / per_user[least],
            2,
            machine=(large or data)["machine"],
            topic="BAHE users at scale",
        )
    ]
    header = [
        "users",
        "BAHE: user phase (ms/user)",
        "text users: user phase (ms/user)",
        "BAHE / text time",
        "distinct behaviours",
        "next night: user phase (ms/user)",
        "next night: behaviours from the store",
        "peak RSS (BAHE refresh)",
    ]
    cells = []
    for size, result in sorted(sizes.items(), key=lambda item: int(item[0])):
        first, night = result["bahe"], result["bahe_next_night"]
        text = result.get("text")
        counts = night["refresh"]["behaviours"]
        cells.append(
            [
                f"{int(size):,}",
                f"{seconds(first['user_phase_seconds'])} ({first['user_phase_ms_per_user']})",
                f"{seconds(text['user_phase_seconds'])} ({text['user_phase_ms_per_user']})"
                if text
                else "not run",
                f"{first['user_phase_seconds'] / text['user_phase_seconds']:.2f}" if text else "-",
                f"{first['refresh']['behaviours']['distinct']:,}",
                f"{seconds(night['user_phase_seconds'])} ({night['user_phase_ms_per_user']})",
                f"{percent(result['next_night_cache_share'])} ({counts['encoded']:,} encoded)",
                mib(first["refresh"]["peak_rss_mib"]),
            ]
        )
    return Part(rows, [Table("BAHE users at scale (benchmarks/bahe_users.py)", header, cells)])


def _per_seed(report: dict) -> tuple[float, float, float]:
    """(test AUC, validation AUC, training seconds) of one encoder: means over CTR seeds."""
    marc = report["lift"][PROTOCOL]["methods"]["marc"]
    return marc["auc_mean"], marc["valid_auc_mean"], report["training"]["marc"]["seconds"]


def quality(*reports: dict | None) -> Part:
    """MARC with BAHE users against text users; ``reports``: the BAHE seeds, then the text seeds,
    equally many (a missing one is None)."""
    half = len(reports) // 2
    sides = {
        "bahe": [_per_seed(r) for r in reports[:half] if r],
        "text": [_per_seed(r) for r in reports[half:] if r],
    }
    if not sides["text"]:
        return Part()

    def spread(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    test = {name: spread([s[0] for s in seeds]) for name, seeds in sides.items()}
    (bahe, _), (text, text_std) = test["bahe"], test["text"]
    row = Row(
        f"Quality, ML-100K, MiniLM, k = 64: MARC test AUC with BAHE users / with text users "
        f"(id-based DCN-V2 + z, {PROTOCOL} protocol; {len(sides['bahe'])} and "
        f"{len(sides['text'])} training seeds)",
        f"{bahe:.4f} ± {test['bahe'][1]:.4f}",
        f"{text:.4f} ± {text_std:.4f}",
        bahe / text,
        3,
        Goal(">=", text - text_std, f">= text - 1 std ({text - text_std:.4f})"),
        value=bahe,
        topic="BAHE quality",
    )
    header = ["user encoder", "seeds", "test AUC", "valid AUC", "training time per seed"]
    cells = [
        [
            name,
            str(len(seeds)),
            "{:.4f} ± {:.4f}".format(*test[name]),
            "{:.4f} ± {:.4f}".format(*spread([s[1] for s in seeds])),
            seconds(statistics.fmean(s[2] for s in seeds)),
        ]
        for name, seeds in sides.items()
    ]
    title = "MARC with BAHE users against text users (mean ± std over training seeds)"
    return Part([row], [Table(title, header, cells)])
