"""Nasty input through validation and rendering: no crash, every row accounted for.

The pydantic record models are the specification; the vectorised validator
must agree with them row by row.
"""

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from marc_batch.data.records import ItemRecord
from marc_batch.data.specs import ITEMS
from marc_batch.data.templates import Template, text_hash
from marc_batch.data.validate import validate

MAX_BYTES = 64
NASTY = st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "\u3000",
        "\x1c",
        "\x85",
        "\u200b",
        "\u00a0",
        "\x00",
        "a\x00b",
        "\u202eevil",
        "שלום",
        "🙂" * 3,
        "x" * 70,
        "\ufeff",
    ]
)
TEXT = st.one_of(
    NASTY, st.text(max_size=20), st.text(alphabet=st.characters(codec="utf-8"), max_size=5)
)
VALUE = st.one_of(
    st.none(),
    TEXT.map(lambda s: s.encode("utf-8")),
    st.binary(max_size=12),
    st.just(b"\xff\xfe"),
    st.just(b"\xed\xa0\x80"),  # an encoded surrogate: not valid UTF-8
    st.just(b"y" * 1_000_000),
)


def expected_valid(identifier: bytes | None, title: bytes | None) -> bool:
    """The spec: decodable text, an ItemRecord, within the byte budget."""
    try:
        fields = {
            "id": None if identifier is None else identifier.decode("utf-8"),
            "title": None if title is None else title.decode("utf-8"),
        }
    except UnicodeDecodeError:
        return False
    try:
        ItemRecord.model_validate(fields)
    except ValidationError:
        return False
    return len(identifier or b"") + len(title or b"") <= MAX_BYTES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(VALUE, VALUE), max_size=25))
def test_validation_matches_the_record_model_and_conserves_rows(rows: list) -> None:
    raw = pa.table(
        {
            "id": pa.array([row[0] for row in rows], pa.binary()),
            "title": pa.array([row[1] for row in rows], pa.binary()),
        }
    )
    result = validate(raw, ITEMS, MAX_BYTES)
    quarantined = result.quarantine["source_row"].to_pylist()
    assert len(set(quarantined)) == len(quarantined)
    assert result.accepted.num_rows + len(quarantined) == len(rows)

    seen: set[bytes] = set()
    expected_ids = []
    for identifier, title in rows:
        if expected_valid(identifier, title) and identifier not in seen:
            seen.add(identifier)
            expected_ids.append(identifier.decode("utf-8"))
    assert result.accepted["id"].to_pylist() == expected_ids

    rendered = Template("{title} #{id}").render(result.accepted).to_pylist()
    assert rendered == [f"{row['title']} #{row['id']}" for row in result.accepted.to_pylist()]


def test_megabyte_texts_validate_render_and_hash() -> None:
    title = "\u202eévil\x00 🙂 " * 70_000  # about 1 MB of RTL, NUL and emoji
    raw = pa.table({"id": ["big", "small"], "title": [title, "ok"]})
    result = validate(raw, ITEMS, max_text_bytes=2_000_000)
    assert result.accepted.num_rows == 2
    rendered = Template("{title}!").render(result.accepted)
    assert rendered[0].as_py() == title + "!"
    assert len(text_hash(rendered, "v1").to_pylist()[0]) == 32
    assert validate(raw, ITEMS, max_text_bytes=1_000).reason_counts() == {"TEXT_TOO_LONG": 1}
