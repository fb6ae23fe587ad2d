"""Safe, vectorised text templates.

A template is ``str.format`` syntax restricted to bare ``{field}`` names: no
attribute access, indexing, conversion or format spec, so a template can
never reach Python objects or run code. Rendering does not call
``str.format`` at all: the template becomes a list of literals and columns
joined by Arrow's ``binary_join_element_wise``, so a million rows render in
one C++ pass. The version is a hash of the template source: changing the
template changes every ``text_hash``, which marks all texts for re-encoding.
"""

import hashlib
import re
from string import Formatter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.errors import TemplateError

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Template:
    """A parsed template: literal text and the whitelisted field names between it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(Formatter().parse(source))
        except ValueError as exc:
            raise TemplateError(f"template {source!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if field is not None and not _FIELD.match(field):
                raise TemplateError(
                    f"template {source!r}: '{{{field}}}' is not a plain field name "
                    "(attribute access, indexing and positional fields are not allowed)"
                )
            if spec or conversion:
                raise TemplateError(
                    f"template {source!r}: '{{{field}}}' may not carry a conversion or format spec"
                )
            self.parts.append((literal, field))
        self.version = hashlib.sha256(source.encode()).hexdigest()[:12]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(field for _, field in self.parts if field is not None)

    def render(self, table: pa.Table) -> pa.ChunkedArray:
        """Render one string per row; a null field renders as an empty string."""
        unknown = sorted(set(self.fields) - set(table.column_names))
        if unknown:
            raise TemplateError(
                f"template {self.source!r} uses unknown field(s) {', '.join(unknown)}; "
                f"available: {', '.join(table.column_names)}"
            )
        pieces: list[pa.ChunkedArray | str] = []
        for literal, field in self.parts:
            if literal:
                pieces.append(literal)
            if field is not None:
                pieces.append(pc.fill_null(_as_text(table[field], field), ""))
        if not any(isinstance(piece, pa.ChunkedArray) for piece in pieces):
            return pa.chunked_array([pa.array(["".join(pieces)] * table.num_rows, pa.string())])
        return pc.binary_join_element_wise(*pieces, "")


def _as_text(column: pa.ChunkedArray, field: str = "") -> pa.ChunkedArray:
    """Cast any column to strings; whole floats print without a trailing '.0'.

    A list renders as its elements joined by ", " (``genres: [a, b]`` -> ``a, b``);
    a type with no text form (a struct, a map) is refused with the field's name.
    """
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        return _as_text(column.cast(dtype.value_type), field)
    if pa.types.is_floating(dtype):
        whole = pc.equal(pc.floor(column), column)
        as_int = pc.cast(pc.if_else(whole, column, None), pa.int64(), safe=False)
        return pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(column, pa.string()))
    if pa.types.is_string(dtype):
        return column
    if (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
    ):
        values = pc.list_flatten(column)
        texts = _as_text(pa.chunked_array([values.combine_chunks()]), field)
        offsets = pc.list_value_length(column).combine_chunks()
        rebuilt = pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(offsets.fill_null(0))]), pa.int32()),
            pc.fill_null(texts, "").combine_chunks(),
            mask=offsets.is_null(),
        )
        return pc.binary_join(rebuilt, ", ")
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        raise TemplateError(
            f"field '{field}' has type {dtype}, which a template cannot print; "
            "use text, numbers, dates or lists"
        ) from None


def text_hash(texts: pa.ChunkedArray, template_version: str) -> pa.Array:
    """A stable per-row hash of (template version, text): equal iff the encoder input is equal."""
    prefix = template_version.encode() + b"\x00"
    return pa.array(
        [
            hashlib.blake2b(
                prefix + text.encode("utf-8", "surrogatepass"), digest_size=16
            ).hexdigest()
            for text in texts.to_pylist()
        ],
        pa.string(),
    )
