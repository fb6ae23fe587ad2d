import json

import pyarrow as pa
import pytest

from marc_batch.data.specs import INTERACTIONS, ITEMS, USERS
from marc_batch.data.validate import validate
from marc_batch.entities import Entity
from marc_batch.errors import SourceError


def items_table(ids: list, titles: list, updated: list | None = None) -> pa.Table:
    columns = {"id": pa.array(ids, pa.binary()), "title": pa.array(titles, pa.binary())}
    if updated is not None:
        columns["updated_at"] = pa.array(updated, pa.string())
    return pa.table(columns)


def reasons(result) -> dict[int, str]:
    return dict(
        zip(
            result.quarantine["source_row"].to_pylist(),
            result.quarantine["reason"].to_pylist(),
            strict=True,
        )
    )


def test_each_bad_row_gets_its_reason_and_rows_are_conserved() -> None:
    raw = items_table(
        [b"1", None, b"  ", b"4", b"5", b"6", b"7", b"7"],
        [b"ok", b"x", b"x", b"", " \t\u3000".encode(), b"\xff", b"y" * 50, b"z"],
    )
    result = validate(raw, ITEMS, max_text_bytes=40)
    assert reasons(result) == {
        1: "NULL_ID",
        2: "NULL_ID",
        3: "EMPTY_TEXT",
        4: "EMPTY_TEXT",
        5: "INVALID_UTF8",
        6: "TEXT_TOO_LONG",
    }
    assert result.accepted["id"].to_pylist() == ["1", "7"]
    assert result.rows_in == raw.num_rows


def test_duplicates_keep_the_newest_row() -> None:
    raw = items_table(
        [b"a", b"a", b"a", b"b"],
        [b"old", b"newest", b"undated", b"b"],
        ["2020-01-01", "2021-06-01T12:00:00", None, None],
    )
    result = validate(raw, ITEMS, max_text_bytes=100)
    assert result.accepted["title"].to_pylist() == ["newest", "b"]
    assert reasons(result) == {0: "DUPLICATE_ID", 2: "DUPLICATE_ID"}
    assert result.accepted.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")


def test_an_invalid_row_does_not_win_a_duplicate() -> None:
    raw = items_table([b"a", b"a"], [b"", b"kept"])
    result = validate(raw, ITEMS, max_text_bytes=100)
    assert result.accepted["title"].to_pylist() == ["kept"]
    assert reasons(result) == {0: "EMPTY_TEXT"}


def test_quarantine_keeps_the_original_bytes() -> None:
    raw = items_table([b"1"], [b"caf\xe9"])
    record = json.loads(validate(raw, ITEMS, 100).quarantine["record"][0].as_py())
    assert record == {"id": "1", "title": "caf\\xe9"}


def test_typed_columns_are_parsed_or_quarantined() -> None:
    raw = pa.table(
        {
            "user_id": ["u1", "u1", "u2", "u1", "u9", "u1"],
            "item_id": ["i1", "i2", "i1", "i3", "i1", "i4"],
            "rating": ["4", "nan", "inf", "x", "5", None],
            "timestamp": ["881250949", "881250949", "1997-12-04T15:55:49", "1", "1", "1"],
        }
    )
    known = {
        Entity.USER: pa.table({"id": ["u1", "u2"]}),
        Entity.ITEM: pa.table({"id": ["i1", "i2", "i3", "i4"]}),
    }
    result = validate(raw, INTERACTIONS, 100, known)
    assert reasons(result) == {
        1: "NON_FINITE",
        2: "NON_FINITE",
        3: "BAD_TYPE",
        4: "UNKNOWN_USER",
        5: "BAD_TYPE",
    }
    assert result.accepted.to_pylist()[0]["rating"] == 4.0


def test_interactions_refer_to_accepted_items() -> None:
    raw = pa.table({"user_id": ["u"], "item_id": ["gone"], "rating": [3.0], "timestamp": [10]})
    known = {
        Entity.USER: pa.table({"id": ["u"]}),
        Entity.ITEM: pa.table({"id": pa.array([], pa.string())}),
    }
    assert reasons(validate(raw, INTERACTIONS, 100, known)) == {0: "UNKNOWN_ITEM"}


def test_integer_ids_become_strings_and_other_types_are_refused() -> None:
    result = validate(pa.table({"id": [1, 2]}), USERS, 100)
    assert result.accepted["id"].to_pylist() == ["1", "2"]
    with pytest.raises(SourceError, match="key column 'id' has type double"):
        validate(pa.table({"id": [1.5]}), USERS, 100)


def test_missing_required_columns_are_a_source_error() -> None:
    with pytest.raises(SourceError, match="items: missing column"):
        validate(pa.table({"id": ["1"]}), ITEMS, 100)


def test_column_names_are_quoted_never_run_as_sql() -> None:
    hostile = 'x", (SELECT 42) AS "injected'
    raw = pa.table({"id": ["1"], "title": ["a"], hostile: ["v"], 'say "hi"': ["w"]})
    result = validate(raw, ITEMS, 100)
    assert result.accepted.column_names == ["id", "title", hostile, 'say "hi"', "updated_at"]
    assert result.accepted[hostile].to_pylist() == ["v"]


def test_source_columns_may_share_the_validators_names() -> None:
    raw = pa.table({"id": ["1", ""], "title": ["a", "b"], "reason": ["r", "s"], "_row": [7, 8]})
    result = validate(raw, ITEMS, 100)
    assert result.accepted.column_names == ["id", "title", "reason", "updated_at"]
    assert reasons(result) == {1: "NULL_ID"}
    assert json.loads(result.quarantine["record"][0].as_py())["_row"] == 8


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pa.array([1, 2]), "text column 'title' has type int64"),
        (pa.array([[1], [2]]), "text column 'title' has type list"),
    ],
)
def test_a_text_column_of_another_type_is_a_source_error(column: pa.Array, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        validate(pa.table({"id": ["1", "2"], "title": column}), ITEMS, 100)


def test_repeated_column_names_are_a_source_error() -> None:
    raw = pa.Table.from_arrays(
        [pa.array(["1"]), pa.array(["a"]), pa.array(["b"])], ["id"] * 2 + ["title"]
    )
    with pytest.raises(SourceError, match="column\\(s\\) id appear more than once"):
        validate(raw, ITEMS, 100)


def test_parquet_types_are_read_or_refused_in_one_line() -> None:
    raw = pa.table(
        {
            "id": pa.array(["1", "2"]).dictionary_encode(),
            "title": pa.array(["a", "b"]).dictionary_encode(),
            "half": pa.array([1.0, 2.0], pa.float16()),
            "nothing": pa.nulls(2),
        }
    )
    assert validate(raw, ITEMS, 100).accepted["id"].to_pylist() == ["1", "2"]
    assert validate(pa.table({"id": ["1"], "title": pa.nulls(1)}), ITEMS, 100).reason_counts() == {
        "EMPTY_TEXT": 1
    }
    with pytest.raises(SourceError, match="items: a column cannot be read"):
        validate(
            pa.table({"id": ["1"], "title": ["a"], "d": pa.array([1], pa.decimal256(40))}), ITEMS, 1
        )


@pytest.mark.parametrize(
    "stamps",
    [
        pa.array([2**40, 0], pa.timestamp("s")),  # the year 36812
        pa.array([2**62, 0], pa.timestamp("ms")),
        pa.array([-(2**62), 0], pa.timestamp("us", tz="UTC")),
        pa.array([2**30, 0], pa.date32()),
        pa.array(["99999-01-01", "1970-01-01"]),
    ],
)
def test_timestamps_past_the_year_9999_are_quarantined_not_fatal(stamps: pa.Array) -> None:
    raw = pa.table({"id": ["far", "near"], "title": ["a", "b"], "updated_at": stamps})
    result = validate(raw, ITEMS, 100)
    assert reasons(result) == {0: "BAD_TYPE"}
    assert result.accepted["id"].to_pylist() == ["near"]
    assert json.loads(result.quarantine["record"][0].as_py())["id"] == "far"
