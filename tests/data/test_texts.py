from datetime import UTC, datetime

import pyarrow as pa

from marc_batch.config import TemplatesConfig
from marc_batch.data.texts import item_texts, user_behaviour_texts, user_texts

ITEMS = pa.table({"id": ["a", "b", "c", "d"], "title": ["Alpha", "Beta", "Gamma", "Delta"]})
USERS = pa.table({"id": ["u", "v"], "age": ["30", None]})


def interactions(rows: list[tuple[str, str, int, str]]) -> pa.Table:
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "rating": [4.0] * len(rows),
            "timestamp": pa.array(
                [datetime.fromtimestamp(r[2], UTC) for r in rows], pa.timestamp("us", tz="UTC")
            ),
            "split": [r[3] for r in rows],
        }
    )


def templates(**overrides) -> TemplatesConfig:
    return TemplatesConfig(
        user="{age}|{history}", behaviour="{title}", history_separator=", ", **overrides
    )


def test_history_is_newest_first_and_train_only() -> None:
    log = interactions(
        [
            ("u", "a", 1, "train"),
            ("u", "b", 3, "train"),
            ("u", "c", 2, "train"),
            ("u", "d", 9, "test"),
        ]
    )
    texts = user_texts(USERS, log, ITEMS, templates()).to_pylist()
    assert [t["text"] for t in texts] == ["30|Beta, Gamma, Alpha", "|"]


def test_budgets_cut_whole_behaviours() -> None:
    log = interactions([("u", "a", 1, "train"), ("u", "b", 3, "train"), ("u", "c", 2, "train")])
    by_items = user_texts(USERS, log, ITEMS, templates(history_max_items=2)).to_pylist()
    assert by_items[0]["text"] == "30|Beta, Gamma"
    # "Beta, Gamma" is 11 characters: a budget of 12 keeps two, 10 keeps one.
    assert (
        user_texts(USERS, log, ITEMS, templates(history_max_chars=12))["text"][0].as_py()
        == "30|Beta, Gamma"
    )
    assert (
        user_texts(USERS, log, ITEMS, templates(history_max_chars=10))["text"][0].as_py()
        == "30|Beta"
    )


def test_text_hash_tracks_text_and_template() -> None:
    base = item_texts(ITEMS, TemplatesConfig(item="{title}"))
    again = item_texts(ITEMS, TemplatesConfig(item="{title}"))
    changed = item_texts(ITEMS, TemplatesConfig(item="Movie {title}"))
    assert base["text_hash"] == again["text_hash"]
    assert len(set(base["text_hash"].to_pylist())) == 4
    assert set(base["text_hash"].to_pylist()).isdisjoint(changed["text_hash"].to_pylist())


def test_item_columns_named_like_interaction_fields_do_not_break_histories() -> None:
    items = ITEMS.append_column("rating", pa.array(["avg 3.1"] * 4)).append_column(
        "timestamp", pa.array(["x"] * 4)
    )
    log = interactions([("u", "a", 1, "train"), ("u", "b", 3, "train")])
    chosen = TemplatesConfig(user="{age}|{history}", behaviour="{title} {rating}")
    texts = user_texts(USERS, log, items, chosen.model_copy(update={"history_separator": ", "}))
    assert texts["text"][0].as_py() == "30|Beta 4, Alpha 4"


def test_behaviour_texts_are_the_profile_and_the_entries_of_the_history() -> None:
    log = interactions(
        [
            ("u", "a", 1, "train"),
            ("u", "b", 3, "train"),
            ("u", "c", 2, "train"),
            ("u", "d", 9, "test"),
        ]
    )
    chosen = templates(history_max_items=2)
    rows = user_behaviour_texts(USERS, log, ITEMS, chosen).to_pylist()
    assert rows == [
        {"id": "u", "profile": "30|", "behaviours": ["Beta", "Gamma"]},
        {"id": "v", "profile": "|", "behaviours": []},
    ]
    texts = user_texts(USERS, log, ITEMS, chosen)["text"].to_pylist()
    assert texts == [
        chosen.user.format(age="30", history=chosen.history_separator.join(rows[0]["behaviours"])),
        chosen.user.format(age="", history=""),
    ]
