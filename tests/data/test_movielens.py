from pathlib import Path

import pytest

from marc_batch.data.movielens import read_movielens
from marc_batch.errors import SourceError


def decoded(raw, column: str) -> list[str]:
    return [
        value.decode("utf-8") if isinstance(value, bytes) else value
        for value in raw.table[column].to_pylist()
    ]


def test_embedded_ml100k_has_the_published_sizes() -> None:
    tables = read_movielens("ml-100k")
    assert {name: raw.table.num_rows for name, raw in tables.items()} == {
        "items": 1682,
        "users": 943,
        "interactions": 100000,
    }
    assert decoded(tables["items"], "genres")[0] == "Animation, Children's, Comedy"


def test_grouplens_100k_layout(tmp_path: Path) -> None:
    flags = "|".join(["0"] * 3 + ["1", "1"] + ["0"] * 14)
    (tmp_path / "u.item").write_bytes(
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}\n".encode("latin-1")
        + "2|Misérables, Les (1995)|01-Jan-1995||http://x|{}\n".format(
            "|".join(["0"] * 8 + ["1"] + ["0"] * 10)
        ).encode("latin-1")
    )
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    (tmp_path / "u.data").write_text("1\t1\t5\t874965758\n1\t2\t3\t876893171\n")
    tables = read_movielens(str(tmp_path))
    assert decoded(tables["items"], "title") == ["Toy Story", "Misérables, Les"]
    assert decoded(tables["items"], "year") == ["1995", "1995"]
    assert decoded(tables["items"], "genres") == ["Animation, Children's", "Drama"]
    assert decoded(tables["users"], "occupation") == ["technician"]
    assert tables["interactions"].table.num_rows == 2


def test_grouplens_1m_layout(tmp_path: Path) -> None:
    (tmp_path / "movies.dat").write_bytes("1::Amélie (2001)::Comedy|Romance\n".encode("latin-1"))
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::99::70072\n")
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    tables = read_movielens(str(tmp_path))
    assert decoded(tables["items"], "title") == ["Amélie"]
    assert decoded(tables["items"], "genres") == ["Comedy, Romance"]
    assert decoded(tables["users"], "age") == ["under 18", "56+"]
    assert decoded(tables["users"], "occupation") == ["K-12 student", "99"]


def test_unknown_directory_layout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no MovieLens layout found"):
        read_movielens(str(tmp_path))
    with pytest.raises(SourceError, match="neither 'ml-100k' nor a directory"):
        read_movielens(str(tmp_path / "missing"))
