"""The texts the encoder reads: one per item and one per user, each with a ``text_hash``.

A user's text is their profile plus their training-split behaviours, newest
first, kept while ``history_max_items`` and ``history_max_chars`` allow (whole
behaviours only, never a cut title). Only training interactions are used, so
nothing from validation or test leaks into user embeddings. The hash covers
the text and a version of every setting that shaped it, so a changed
template or budget re-encodes exactly the texts it changed. The BAHE user
encoder reads the same user as a profile and a list of behaviour texts
(``user_behaviour_texts``), built from the same rows as the history.
"""

import hashlib

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from marc_batch.config import TemplatesConfig
from marc_batch.data.templates import Template, text_hash
from marc_batch.errors import TemplateError

BEHAVIOUR_FIELDS = ("user_id", "item_id", "rating", "timestamp")
# ``title`` is what people read beside a result (an item's title; null for users): it
# travels with the rows into the snapshot, so search shows it without re-reading sources.
TEXTS_SCHEMA = pa.schema(
    [("id", pa.string()), ("text", pa.string()), ("text_hash", pa.string()), ("title", pa.string())]
)


def _with_hash(
    ids: pa.ChunkedArray, texts: pa.ChunkedArray, version: str, titles: pa.ChunkedArray | None
) -> pa.Table:
    if titles is None:
        titles = pa.nulls(len(ids), pa.string())
    return pa.table(
        {"id": ids, "text": texts, "text_hash": text_hash(texts, version), "title": titles},
        schema=TEXTS_SCHEMA,
    )


def item_texts(items: pa.Table, templates: TemplatesConfig) -> pa.Table:
    """Render the item template for every accepted item."""
    template = Template(templates.item)
    return _with_hash(items["id"], template.render(items), template.version, items["title"])


def user_version(templates: TemplatesConfig) -> str:
    """A version over everything that shapes a user text."""
    parts = (
        templates.user,
        templates.behaviour,
        templates.history_separator,
        str(templates.history_max_items),
        str(templates.history_max_chars),
    )
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]


def user_behaviours(
    interactions: pa.Table, items: pa.Table | ds.Dataset, templates: TemplatesConfig
) -> pa.Table:
    """(user_id, position, behaviour): the entries of each user's ``{history}``.

    Each training behaviour is rendered with the behaviour template; a user's are
    numbered newest first (position 1) and kept while both budgets allow, so they
    are exactly what the history lists, one row each. ``items`` may be a dataset of
    files: DuckDB then reads only what the join needs.
    """
    con = duckdb.connect()
    con.register("interactions", interactions)
    con.register("items", items)
    # An item column named like an interaction field (an item's own "rating", say) is
    # shadowed: in a behaviour, {rating} is what this user gave.
    shadowed = ["id", *(name for name in items.schema.names if name in BEHAVIOUR_FIELDS)]
    excluded = ", ".join('"' + name.replace('"', '""') + '"' for name in shadowed)
    events = con.sql(
        f"""
        SELECT i.* EXCLUDE ({excluded}), x.user_id, x.item_id, x.rating, x.timestamp
        FROM interactions x JOIN items i ON i.id = x.item_id
        WHERE x.split = 'train'
        """
    ).to_arrow_table()
    entries = pa.table(
        {
            "user_id": events["user_id"],
            "item_id": events["item_id"],
            "timestamp": events["timestamp"],
            "entry": Template(templates.behaviour).render(events),
        }
    )
    con.register("entries", entries)
    separator = len(templates.history_separator)
    behaviours = con.sql(
        f"""
        WITH ordered AS (
            SELECT user_id, entry,
                row_number() OVER w AS position,
                sum(length(entry) + {separator}) OVER w - {separator} AS chars
            FROM entries
            WINDOW w AS (PARTITION BY user_id ORDER BY timestamp DESC, item_id
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
        SELECT user_id, position, entry AS behaviour
        FROM ordered
        WHERE position <= $max_items AND chars <= $max_chars
        """,
        params={
            "max_items": templates.history_max_items,
            "max_chars": templates.history_max_chars,
        },
    ).to_arrow_table()
    con.close()
    return behaviours


def user_histories(
    interactions: pa.Table, items: pa.Table | ds.Dataset, templates: TemplatesConfig
) -> pa.Table:
    """(user_id, history): each user's behaviours joined by the separator, newest first."""
    return _histories(user_behaviours(interactions, items, templates), templates)


def _histories(behaviours: pa.Table, templates: TemplatesConfig) -> pa.Table:
    con = duckdb.connect()
    con.register("behaviours", behaviours)
    histories = con.sql(
        """
        SELECT user_id, string_agg(behaviour, $separator ORDER BY position) AS history
        FROM behaviours
        GROUP BY user_id
        """,
        params={"separator": templates.history_separator},
    ).to_arrow_table()
    con.close()
    return histories


def _with_history(users: pa.Table, histories: pa.Table) -> pa.Table:
    """Users ordered by id, each with a ``history`` column ('' where they have none)."""
    if "history" in users.column_names:
        raise TemplateError("users have a column named 'history', which the user template reserves")
    con = duckdb.connect()
    con.register("users", users)
    con.register("histories", histories)
    joined = con.sql(
        """
        SELECT u.*, coalesce(h.history, '') AS history
        FROM users u LEFT JOIN histories h ON h.user_id = u.id
        ORDER BY u.id
        """
    ).to_arrow_table()
    con.close()
    return joined


def user_texts(
    users: pa.Table,
    interactions: pa.Table,
    items: pa.Table | ds.Dataset,
    templates: TemplatesConfig,
    behaviours: bool = False,
) -> pa.Table:
    """Render the user template with ``{history}`` for every accepted user.

    With ``behaviours``, the table also holds what BAHE reads of each user (the
    ``profile`` and ``behaviours`` columns of :func:`user_behaviour_texts`), made
    from the same rows as the text, so the text hash covers them too.
    """
    entries = user_behaviours(interactions, items, templates)
    joined = _with_history(users, _histories(entries, templates))
    texts = _with_hash(
        joined["id"], Template(templates.user).render(joined), user_version(templates), None
    )
    if not behaviours:
        return texts
    read = _behaviour_lists(users, entries, templates)
    return texts.append_column("profile", read["profile"]).append_column(
        "behaviours", read["behaviours"]
    )


def user_behaviour_texts(
    users: pa.Table,
    interactions: pa.Table,
    items: pa.Table | ds.Dataset,
    templates: TemplatesConfig,
) -> pa.Table:
    """(id, profile, behaviours) per accepted user, ordered by id: what BAHE reads.

    ``profile`` is the user template rendered with an empty ``{history}``;
    ``behaviours`` lists the entries that history would hold, newest first, so the
    user's text is the profile with them joined in, never re-parsed out of it.
    """
    return _behaviour_lists(users, user_behaviours(interactions, items, templates), templates)


def _behaviour_lists(users: pa.Table, entries: pa.Table, templates: TemplatesConfig) -> pa.Table:
    no_history = pa.table({"user_id": users["id"], "history": pa.nulls(len(users), pa.string())})
    profiles = Template(templates.user).render(_with_history(users, no_history))
    con = duckdb.connect()
    con.register("users", users.select(["id"]))
    con.register("behaviours", entries)
    lists = con.sql(
        """
        SELECT u.id, coalesce(list(b.behaviour ORDER BY b.position)
                              FILTER (WHERE b.behaviour IS NOT NULL), []) AS behaviours
        FROM users u LEFT JOIN behaviours b ON b.user_id = u.id
        GROUP BY u.id
        ORDER BY u.id
        """
    ).to_arrow_table()
    con.close()
    return pa.table({"id": lists["id"], "profile": profiles, "behaviours": lists["behaviours"]})
