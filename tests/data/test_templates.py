import pyarrow as pa
import pytest

from marc_batch.data.templates import Template, text_hash
from marc_batch.errors import TemplateError


def test_renders_fields_and_literals_vectorised() -> None:
    table = pa.table({"title": ["Heat", None], "year": [1995, 1996], "rating": [4.0, 3.5]})
    rendered = Template("{title} ({year}) rated {rating}").render(table)
    assert rendered.to_pylist() == ["Heat (1995) rated 4", " (1996) rated 3.5"]


def test_literal_only_template_renders_once_per_row() -> None:
    assert Template("same").render(pa.table({"x": [1, 2]})).to_pylist() == ["same", "same"]


def test_braces_can_be_escaped() -> None:
    assert Template("{{{title}}}").render(pa.table({"title": ["a"]})).to_pylist() == ["{a}"]


@pytest.mark.parametrize(
    "source",
    [
        "{title.__class__}",
        "{title.__globals__}",
        "{title[0]}",
        "{0}",
        "{}",
        "{title!r}",
        "{title:>10}",
        "{title",
        "}",
    ],
)
def test_only_plain_field_names_are_allowed(source: str) -> None:
    with pytest.raises(TemplateError):
        Template(source)


def test_unknown_fields_are_refused_with_the_available_ones() -> None:
    with pytest.raises(TemplateError, match=r"unknown field\(s\) secret; available: title"):
        Template("{secret}").render(pa.table({"title": ["a"]}))


def test_version_follows_the_template_and_changes_the_hash() -> None:
    one, two = Template("{title}"), Template("{title}!")
    assert one.version == Template("{title}").version != two.version
    texts = pa.chunked_array([["a", "b", "a"]])
    hashes = text_hash(texts, one.version).to_pylist()
    assert hashes[0] == hashes[2] != hashes[1]
    assert text_hash(texts, two.version).to_pylist()[0] != hashes[0]


def test_lists_render_joined_and_structs_are_refused_by_name() -> None:
    table = pa.table(
        {
            "genres": pa.array([["drama", "war"], None, []]),
            "scores": pa.array([[1.0, 2.5], [3.0], None]),
            "kind": pa.array(["a", "b", "a"]).dictionary_encode(),
            "meta": pa.array([{"a": 1}] * 3),
        }
    )
    rendered = Template("{genres}|{scores}|{kind}").render(table).to_pylist()
    assert rendered == ["drama, war|1, 2.5|a", "|3|b", "||a"]
    with pytest.raises(TemplateError, match="field 'meta' has type struct"):
        Template("{meta}").render(table)
