"""MovieLens, the embedded dataset: the RecBole atomic files and the GroupLens layouts.

``ml-100k`` resolves to the copy shipped inside the ``recbole`` wheel, which
is located with ``importlib.util.find_spec`` and read as plain files: the
package itself is never imported. A directory holding the original GroupLens
files (ml-100k ``u.data``/``u.item``/``u.user`` or ml-1m ``ratings.dat``/
``movies.dat``/``users.dat``) is read too, so a real ML-1M copy works the
same way. Every layout comes out with the canonical columns: items ``id,
title, year, genres``; users ``id, age, gender, occupation, zip_code``;
interactions ``user_id, item_id, rating, timestamp``.
"""

import importlib.util
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.data.sources import RawTable, read_csv_bytes
from marc_batch.errors import SourceError

EMBEDDED = "ml-100k"

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
AGES_1M = {
    "1": "under 18", "18": "18-24", "25": "25-34", "35": "35-44",
    "45": "45-49", "50": "50-55", "56": "56+",
}  # fmt: skip
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip


def embedded_dir() -> Path:
    """The ml-100k directory inside the installed ``recbole`` wheel (found, not imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            "the embedded MovieLens-100K needs the recbole wheel: "
            "pip install --no-deps recbole (make install does this)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"


def read_movielens(dataset: str) -> dict[str, RawTable]:
    """Read ``items``, ``users`` and ``interactions`` from ``ml-100k`` or a MovieLens directory."""
    root = embedded_dir() if dataset == EMBEDDED else Path(dataset)
    if not root.is_dir():
        raise SourceError(f"dataset {dataset!r} is neither '{EMBEDDED}' nor a directory")
    atomic = {suffix: sorted(root.glob(f"*.{suffix}")) for suffix in ("item", "user", "inter")}
    if all(len(files) == 1 for files in atomic.values()):
        return _read_atomic(atomic["item"][0], atomic["user"][0], atomic["inter"][0])
    if all((root / name).is_file() for name in ("u.data", "u.item", "u.user")):
        return _read_grouplens_100k(root)
    if all((root / name).is_file() for name in ("ratings.dat", "movies.dat", "users.dat")):
        return _read_grouplens_1m(root)
    raise SourceError(
        f"{root}: no MovieLens layout found (expected one each of *.item/*.user/*.inter, "
        "or u.data/u.item/u.user, or ratings.dat/movies.dat/users.dat)"
    )


def _read_atomic(item: Path, user: Path, inter: Path) -> dict[str, RawTable]:
    """RecBole atomic files: tab-separated, a ``name:type`` header, no quoting."""
    tables = {}
    renames = {
        "items": {
            "item_id": "id",
            "movie_title": "title",
            "release_year": "year",
            "class": "genres",
        },
        "users": {"user_id": "id"},
        "interactions": {},
    }
    for entity, path in (("items", item), ("users", user), ("interactions", inter)):
        raw = read_csv_bytes(str(path), "\t", quoting=False)
        names = [name.split(":", 1)[0] for name in raw.table.column_names]
        raw.table = raw.table.rename_columns([renames[entity].get(n, n) for n in names])
        tables[entity] = raw
    items = tables["items"].table
    if "genres" in items.column_names:
        genres = pc.replace_substring(items["genres"], b" ", b", ")
        tables["items"].table = items.set_column(
            items.schema.get_field_index("genres"), "genres", genres
        )
    return tables


def _latin1(path: Path, separator: bytes = b"") -> pa.Buffer:
    """GroupLens files are Latin-1; re-encode as UTF-8 (and normalise a multi-byte separator)."""
    data = path.read_bytes()
    if separator:
        data = data.replace(separator, b"\t")
    return pa.py_buffer(data.decode("latin-1").encode("utf-8"))


def _split_title_year(items: pa.Table) -> pa.Table:
    """'Toy Story (1995)' -> title 'Toy Story', year '1995'; titles without a year stay whole."""
    titles = items["title"].cast(pa.string())
    parts = pc.extract_regex(titles, r"^(?P<name>.*?)\s*\((?P<year>\d{4})\)\s*$")
    title = pc.coalesce(pc.struct_field(parts, "name"), titles)
    year = pc.fill_null(pc.struct_field(parts, "year"), "")
    items = items.set_column(items.schema.get_field_index("title"), "title", title)
    return items.append_column("year", year)


def _read_grouplens_100k(root: Path) -> dict[str, RawTable]:
    flags = [f"g{i}" for i in range(len(GENRES_100K))]
    items = read_csv_bytes(
        _latin1(root / "u.item"), "|", quoting=False,
        names=["id", "title", "release_date", "video_release_date", "imdb_url", *flags],
    )  # fmt: skip
    genre_names = [
        pc.if_else(pc.equal(items.table[flag], b"1"), name.encode(), None)
        for flag, name in zip(flags, GENRES_100K, strict=True)
    ]
    genres = pc.binary_join_element_wise(*genre_names, b", ", null_handling="skip")
    table = items.table.select(["id", "title"]).append_column("genres", genres)
    items.table = _split_title_year(table).select(["id", "title", "year", "genres"])
    users = read_csv_bytes(
        _latin1(root / "u.user"), "|", quoting=False,
        names=["id", "age", "gender", "occupation", "zip_code"],
    )  # fmt: skip
    inter = read_csv_bytes(
        str(root / "u.data"), "\t", quoting=False,
        names=["user_id", "item_id", "rating", "timestamp"],
    )  # fmt: skip
    return {"items": items, "users": users, "interactions": inter}


def _decode_codes(column: pa.ChunkedArray, names: dict[str, str]) -> pa.ChunkedArray:
    """Replace ML-1M code values by their names; unknown codes stay as they are."""
    text = column.cast(pa.string())
    keys = pa.array(list(names))
    index = pc.index_in(text, value_set=keys)
    return pc.coalesce(pc.take(pa.array(list(names.values())), index), text)


def _read_grouplens_1m(root: Path) -> dict[str, RawTable]:
    items = read_csv_bytes(
        _latin1(root / "movies.dat", b"::"), "\t", quoting=False, names=["id", "title", "genres"]
    )
    genres = pc.replace_substring(items.table["genres"], b"|", b", ")
    items.table = _split_title_year(items.table.set_column(2, "genres", genres)).select(
        ["id", "title", "year", "genres"]
    )
    users = read_csv_bytes(
        _latin1(root / "users.dat", b"::"), "\t", quoting=False,
        names=["id", "gender", "age", "occupation", "zip_code"],
    )  # fmt: skip
    table = users.table
    table = table.set_column(2, "age", _decode_codes(table["age"], AGES_1M))
    occupations = dict(zip(map(str, range(len(OCCUPATIONS_1M))), OCCUPATIONS_1M, strict=True))
    table = table.set_column(3, "occupation", _decode_codes(table["occupation"], occupations))
    users.table = table.select(["id", "age", "gender", "occupation", "zip_code"])
    inter = read_csv_bytes(
        _latin1(root / "ratings.dat", b"::"), "\t", quoting=False,
        names=["user_id", "item_id", "rating", "timestamp"],
    )  # fmt: skip
    return {"items": items, "users": users, "interactions": inter}
