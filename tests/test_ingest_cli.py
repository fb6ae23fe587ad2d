"""The ingest command end to end, on the embedded data and on a corrupted copy."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import run_cli


def ingest_json(*args: str, cwd: Path) -> dict:
    result = run_cli("ingest", "--json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_dataset_counts(tmp_path: Path) -> None:
    report = ingest_json("--dataset", "ml-100k", cwd=tmp_path)
    assert (report["items"], report["users"], report["interactions"], report["quarantined"]) == (
        1682,
        943,
        100000,
        0,
    )


def corrupt(directory: Path) -> None:
    """Duplicate ids, empty titles, invalid bytes and a malformed line, as a bad export would."""
    items = (directory / "ml-100k.item").read_bytes().splitlines()
    header, rows = items[0], items[1:]
    rows[4] = b"5\t\t1995\tDrama"  # empty title
    rows[5] = b"6\t   \t1995\tDrama"  # whitespace-only title
    rows[6] = b"7\tCaf\xe9 Society\t1995\tDrama"  # Latin-1 byte in a UTF-8 file
    rows.append(b"1\tToy Story again\t1995\tAnimation")  # duplicate id
    rows.append(b"2\tGoldenEye again\t1995\tAction")  # duplicate id
    (directory / "ml-100k.item").write_bytes(b"\n".join([header, *rows]) + b"\n")
    users = (directory / "ml-100k.user").read_bytes().splitlines()
    users.append(b"944\t30")  # malformed: too few fields
    (directory / "ml-100k.user").write_bytes(b"\n".join(users) + b"\n")
    inter = (directory / "ml-100k.inter").read_bytes().splitlines()
    inter.append(b"1\t1\tNaN\t881250949")
    (directory / "ml-100k.inter").write_bytes(b"\n".join(inter) + b"\n")


def test_corrupted_copy_quarantines_every_bad_row_with_its_reason(
    tmp_path: Path, ml100k_copy: Path
) -> None:
    corrupt(ml100k_copy)
    report = ingest_json("--dataset", str(ml100k_copy), cwd=tmp_path)
    tables = report["tables"]
    assert tables["items"]["reasons"] == {"EMPTY_TEXT": 2, "INVALID_UTF8": 1, "DUPLICATE_ID": 2}
    assert tables["users"]["reasons"] == {"MALFORMED_ROW": 1}
    # Ratings of the three refused items now point at no accepted item.
    assert tables["interactions"]["reasons"]["NON_FINITE"] == 1
    assert tables["interactions"]["reasons"]["UNKNOWN_ITEM"] > 0
    for entry in tables.values():
        assert entry["rows_in"] == entry["accepted"] + entry["quarantined"]
    assert report["quarantined"] == sum(entry["quarantined"] for entry in tables.values())
    assert (tables["items"]["rows_in"], tables["users"]["rows_in"]) == (1684, 944)

    files = {Path(p).name: pq.read_table(tmp_path / p) for p in report["quarantine_files"]}
    assert set(files) == {"items.parquet", "users.parquet", "interactions.parquet"}
    items = files["items.parquet"].to_pylist()
    assert {row["reason"] for row in items} == {"EMPTY_TEXT", "INVALID_UTF8", "DUPLICATE_ID"}
    assert any(json.loads(row["record"])["title"] == "Caf\\xe9 Society" for row in items)
    # The newest row of a duplicated id is kept; without updated_at, the first one.
    duplicates = [json.loads(row["record"]) for row in items if row["reason"] == "DUPLICATE_ID"]
    assert {d["title"] for d in duplicates} == {"Toy Story again", "GoldenEye again"}


def test_error_budget_fails_the_run_after_writing_quarantine(
    tmp_path: Path, ml100k_copy: Path
) -> None:
    corrupt(ml100k_copy)
    config = tmp_path / "strict.toml"
    config.write_text("[sources]\nmax_quarantine_fraction = 0.001\n")
    result = run_cli("ingest", "--config", str(config), "--dataset", str(ml100k_copy), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: items: 5 of 1684 rows quarantined (0.3%), over the error budget of 0.1%"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert list((tmp_path / "marc-store" / "quarantine").glob("*/items.parquet"))


def test_human_report_lists_tables_and_texts(tmp_path: Path) -> None:
    result = run_cli("ingest", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "interactions" in result.stdout and "100000" in result.stdout
    assert "Toy Story" in result.stdout
