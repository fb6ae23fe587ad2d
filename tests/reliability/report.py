"""Render benchmarks/results/reliability.md from the JSON the reliability tests write.

It lives beside the tests whose records it renders (``ledger.py`` writes them),
so that the record format and its one reader change together.

``make reliability`` runs ``tests/reliability`` with the ledger plugin
(``tests/reliability/ledger.py``), which writes every fault injected,
bad-input case tried, concurrent run and security check with its test's
outcome; this script turns that file into the report.

    python -m tests.reliability.report benchmarks/results/reliability.json \\
        benchmarks/results/reliability.md
"""

import argparse
import json
from collections import Counter
from pathlib import Path


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def yes(flag: bool) -> str:
    return "yes" if flag else "**NO**"


def campaign_section(entries: list[dict]) -> list[str]:
    """The random-kill campaign (``test_random_kills.py``): one table per campaign run."""
    if not entries:
        return []
    lines = [
        "## Random-kill campaign",
        "",
        "Real `marc-batch refresh` commands on one persistent Prefect home and one store,",
        "each SIGKILLed at a seeded random moment of an uninterrupted run's duration (two",
        "in three after its flow began, the rest anywhere: most of a run is imports and the",
        "server's start); after every kill, `snapshots validate` on every channel, a reader",
        "in another process and a comparison with an uninterrupted run; then a final run",
        "that must complete. A slot counts as leaked when a run gave up waiting for it or",
        "waited longer than a dead holder's lease (60 s, Prefect's floor) plus one poll.",
        "",
    ]
    for e in entries:
        states = ", ".join(f"{n} {state}" for state, n in sorted(e["states"].items()))
        lines += [
            *table(
                ["figure", "value"],
                [
                    ["kills (seed)", f"{e['kills']} ({e['seed']})"],
                    [
                        "uninterrupted run: flow began at, ended at (s)",
                        f"{e.get('flow_began_at', 0):.0f}, {e['typical_seconds']:.0f}",
                    ],
                    ["state each killed run left", states or "-"],
                    ["runs started (first uninterrupted one included)", e["runs"]],
                    ["re-runs that ended by themselves and finished", e["reruns_finished"]],
                    ["re-runs that failed", e["reruns_failed"]],
                    ["final run completed", yes(e["final_finished"])],
                    ["rows lost", e["rows_lost"]],
                    ["partial snapshots visible", e["partial_visible"]],
                    [
                        "runs that waited for a `gpu` slot (longest wait)",
                        f"{e['slot_waits']} ({e['longest_slot_wait']:.0f} s)",
                    ],
                    ["runs that waited on a leaked slot", e["leaked_slots"]],
                    ["seconds spent in the runs", f"{e['wall_seconds']:.0f}"],
                    ["campaign passed", yes(e["passed"])],
                ],
            ),
            "",
        ]
        if e["slot_waits"]:
            lines += [
                f"{e['slot_waits']} run(s) logged a wait for the `gpu` slot. A run started",
                "right after a kill that left a shard holding the slot waits until the dead",
                "holder's lease expires (up to 60 s) and then revokes it: a wait on an",
                "expiring lease, not a leak, but while leases last 60 s the goal as worded",
                "(no run waits on a dead holder's slot) is not met.",
                "",
            ]
    return lines


def merge(document: dict, partial: dict) -> dict:
    """``document`` with the tests of ``partial`` (a run of some tests) replaced by its own."""
    ran = set(partial["tests"])
    records = [e for e in document["records"] if e["test"] not in ran] + partial["records"]
    tests = {k: v for k, v in document["tests"].items() if k not in ran} | partial["tests"]
    return {**document, "records": records, "tests": tests}


def render(document: dict) -> str:
    records = document["records"]
    tests = document["tests"]
    by_kind: dict[str, list[dict]] = {}
    for entry in records:
        by_kind.setdefault(entry["kind"], []).append(entry)
    faults = by_kind.get("fault", [])
    bad = by_kind.get("bad_input", [])
    concurrent = by_kind.get("concurrency", [])
    security = by_kind.get("security", [])
    published = by_kind.get("conservation", []) + [
        e for e in by_kind.get("bad_input", []) if e["outcome"] in ("clean", "quarantine")
    ]
    reliability_tests = {k: v for k, v in tests.items() if k.startswith("tests/reliability/")}
    failed = sorted(k for k, v in reliability_tests.items() if v["outcome"] == "failed")
    lost = sum(int(entry.get("rows_lost") or 0) for entry in records)
    accounted = sum(int(entry.get("rows_in") or 0) for entry in bad)
    outcomes = Counter(entry["outcome"] for entry in bad)
    sources = Counter(entry["source"] for entry in bad)
    errors = Counter(entry["error"] for entry in bad if entry.get("error"))

    lines = [
        "# Reliability report",
        "",
        "Regenerated by `make reliability`, which runs `tests/reliability/` with the ledger",
        "plugin and renders its records with `tests/reliability/report.py`. Every",
        "figure below comes from a test that checked it; a figure from a failing test is",
        "marked. Raw records: `benchmarks/results/reliability.json`.",
        "",
        f"Generated {document['generated_at']} on {document['machine']}, Python "
        f"{document['python']}: {len(reliability_tests)} tests, "
        f"{len(reliability_tests) - len(failed)} passed, {len(failed)} failed, "
        f"{document['wall_seconds']:.0f} s.",
        "",
        "## Summary",
        "",
        *table(
            ["figure", "value"],
            [
                [
                    "fault points injected and survived",
                    f"{sum(e['passed'] for e in faults)} of {len(faults)}",
                ],
                [
                    "bad-input cases tried",
                    f"{len(bad)} ("
                    + ", ".join(f"{n} {source}" for source, n in sorted(sources.items()))
                    + ")",
                ],
                [
                    "bad-input outcomes",
                    ", ".join(f"{n} {kind}" for kind, n in sorted(outcomes.items())),
                ],
                ["rows accounted for in bad-input runs (in = embedded + quarantined)", accounted],
                ["rows lost", lost],
                [
                    "concurrent runs held (one winner, clear conflict, re-run ok)",
                    f"{sum(e['passed'] for e in concurrent)} of {len(concurrent)}",
                ],
                [
                    "security checks passed",
                    f"{sum(e['passed'] for e in security)} of {len(security)}",
                ],
                [
                    "published runs whose manifest records and satisfies conservation",
                    f"{sum(e['passed'] for e in published)} of {len(published)}",
                ],
            ],
        ),
        "",
    ]
    if failed:
        lines += ["**Failed tests:**", "", *[f"- `{name}`" for name in failed], ""]

    lines += [
        "## Faults injected",
        "",
        "Each fault ends with the published state unchanged (or the complete new version",
        "committed), a re-run that publishes, and the snapshot compared with one from an",
        "uninterrupted run: same ids, texts and embeddings, nothing lost or duplicated.",
        "",
        *table(
            ["flow", "fault point", "store", "outcome", "re-run", "rows lost", "survived"],
            [
                [
                    e["flow"],
                    e["point"],
                    e["backend"],
                    e["outcome"],
                    e["rerun"],
                    e["rows_lost"],
                    yes(e["passed"]),
                ]
                for e in faults
            ],
        ),
        "",
        *campaign_section(by_kind.get("campaign", [])),
        "## Concurrent runs",
        "",
        *table(
            ["case", "winner", "loser", "re-run", "rows lost", "held"],
            [
                [e["case"], e["winner"], e["loser"], e["rerun"], e["rows_lost"], yes(e["passed"])]
                for e in concurrent
            ],
        ),
        "",
        "## Bad input",
        "",
        "Every run ends in a one-line `MarcBatchError` with nothing published, or a",
        "snapshot where rows in = embedded + quarantined, each quarantined row with a",
        "reason in the run's quarantine file. Errors seen: "
        + ", ".join(f"`{name}` {n}" for name, n in sorted(errors.items()))
        + ".",
        "",
    ]
    generated = [e for e in bad if e["source"] == "hypothesis"]
    if generated:
        counts = Counter((e["case"], e["outcome"], e.get("error") or "-") for e in generated)
        lines += [
            f"Generated catalogues (Hypothesis, refresh then backfill): {len(generated)} runs.",
            "",
            *table(
                ["format", "outcome", "error", "runs"],
                [[*key, n] for key, n in sorted(counts.items())],
            ),
            "",
        ]
    named = [e for e in bad if e["source"] != "hypothesis"]
    lines += [
        f"Corpus (`tests/reliability/corpus/`) and model drift: {len(named)} cases. Rows are",
        "items and users (the embedded entities; interactions are validated and",
        "quarantined the same way but not embedded).",
        "",
        *table(
            ["case", "outcome", "error", "rows in", "embedded", "quarantined", "passed"],
            [
                [
                    e["case"],
                    e["outcome"],
                    e.get("error") or "-",
                    e.get("rows_in", "-"),
                    e.get("embedded", "-"),
                    e.get("quarantined", "-"),
                    yes(e["passed"]),
                ]
                for e in sorted(named, key=lambda e: (e["source"], e["case"]))
            ],
        ),
        "",
        "## Security",
        "",
        *[f"- {e['check']} ({'passed' if e['passed'] else '**failed**'})" for e in security],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument(
        "--merge",
        type=Path,
        help="The JSON of a run of some tests (the kill campaign alone, say): its records "
        "replace those tests' records in SOURCE, which is rewritten, before rendering.",
    )
    args = parser.parse_args()
    document = json.loads(args.source.read_text(encoding="utf-8"))
    if args.merge:
        document = merge(document, json.loads(args.merge.read_text(encoding="utf-8")))
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        args.source.write_text(text, encoding="utf-8")
    args.target.write_text(render(document), encoding="utf-8")
    print(f"wrote {args.target}")


if __name__ == "__main__":
    main()
