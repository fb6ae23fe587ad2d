"""The figures of the reliability tests, for ``benchmarks/results/reliability.md``.

Tests record what they injected and what they checked through the ``ledger``
fixture (``tests/reliability/conftest.py``). Loaded as a plugin, this module
writes those records, joined with each test's outcome, to a JSON file at the
end of the session::

    python -m pytest tests/reliability -p tests.reliability.ledger \\
        --reliability-json benchmarks/results/reliability.json

``tests/reliability/report.py`` turns that file into the markdown
report (``make reliability`` runs both). Without the plugin, records are
kept in memory and dropped.
"""

import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

RECORDS: list[dict] = []
OUTCOMES: dict[str, dict] = {}
_STARTED = time.monotonic()


def record(nodeid: str, kind: str, **fields: object) -> None:
    """Note one fact: ``kind`` is fault, bad_input, concurrency or security."""
    RECORDS.append({"test": nodeid, "kind": kind, **fields})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-json",
        default=None,
        help="Write the reliability tests' records and outcomes to this JSON file.",
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = OUTCOMES.setdefault(report.nodeid, {"outcome": "passed", "seconds": 0.0})
    entry["seconds"] = round(entry["seconds"] + report.duration, 3)
    if report.failed:
        entry["outcome"] = "failed"
    elif report.skipped and report.when in ("setup", "call"):
        entry["outcome"] = "skipped"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("--reliability-json")
    if not target:
        return
    records = [
        {**entry, "passed": OUTCOMES.get(entry["test"], {}).get("outcome") == "passed"}
        for entry in RECORDS
    ]
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "exit_status": int(exitstatus),
        "wall_seconds": round(time.monotonic() - _STARTED, 1),
        "tests": OUTCOMES,
        "records": records,
    }
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
