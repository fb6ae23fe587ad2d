"""The lift evaluation's parts: the leak-free split of training rows, side features, the model."""

from pathlib import Path

import numpy as np
import pytest

from marc_batch.config import Config, LiftConfig
from marc_batch.data.ingest import ingest
from marc_batch.errors import ConfigError
from marc_batch.evaluate.features import SparseField, side_features
from marc_batch.evaluate.lift import lift_tables, rela_impr, score_lift
from marc_batch.train.pairs import Split, build_pairs, downstream_pairs, encoder_pairs, latest_rows
from tests.model.synthetic import COLOURS, colour_pairs
from tests.tiny import write_catalogue


def tiny_catalogue(tmp_path: Path):
    write_catalogue(tmp_path / "catalogue")
    sources = {
        name: {"format": "csv", "path": str(tmp_path / "catalogue" / f"{name}.csv")}
        for name in ("items", "users", "interactions")
    }
    catalogue, _ = ingest(Config(sources={"dataset": None, **sources}))
    return catalogue


def id_fields(users: int, items: int) -> dict[str, list[SparseField]]:
    """Only the id of each side: what the synthetic pairs have."""
    return {
        entity: [SparseField("id", np.arange(1, count + 1)[:, None], count + 1)]
        for entity, count in (("user", users), ("item", items))
    }


def test_latest_rows_takes_each_users_latest_fraction() -> None:
    split = Split(np.array([0, 0, 0, 0, 1, 1, 2, 0]), np.arange(8), np.zeros(8, np.float32))
    # user 0 has rows 0, 1, 2, 3, 7 (in time order): floor(5 / 2) = 2 latest; user 2 keeps its one.
    assert latest_rows(split, 0.5).tolist() == [0, 0, 0, 1, 0, 1, 0, 1]
    assert not latest_rows(split, 0.0).any()


def test_the_encoder_and_the_downstream_model_split_each_users_history_in_time(
    tmp_path: Path,
) -> None:
    catalogue = tiny_catalogue(tmp_path)
    pairs = build_pairs(catalogue)
    encoder, downstream = encoder_pairs(pairs, 0.5), downstream_pairs(pairs, 0.5)
    train = pairs.splits["train"]
    assert len(encoder.splits["train"]) + len(downstream.splits["train"]) == len(train)
    assert encoder.splits["valid"] is pairs.splits["valid"]
    # The tiny log gives each user one item per minute; item rows follow from (user, minute).
    item_ids = catalogue.item_texts["id"].to_pylist()
    user_ids = catalogue.user_texts["id"].to_pylist()
    minute = {
        (f"u{u}", str((u * 7 + t) % 60)): t for u in range(12) for t in range(20)
    }  # the schedule of tests.tiny.write_catalogue

    def minutes(split: Split, user: int) -> list[int]:
        rows = split.users == user
        return [minute[(user_ids[user], item_ids[i])] for i in split.items[rows]]

    for user in np.unique(train.users):
        early = minutes(encoder.splits["train"], user)
        late = minutes(downstream.splits["train"], user)
        assert late and max(early) < min(late)


def test_side_features_follow_the_text_rows_and_split_multi_valued_columns(
    tmp_path: Path,
) -> None:
    catalogue = tiny_catalogue(tmp_path)
    config = LiftConfig(item_features=["year", "genres"], multi_valued={"genres": ","})
    fields = side_features(catalogue, config)
    assert [f.name for f in fields["user"]] == ["id", "age", "gender", "occupation"]
    gender = fields["user"][2]
    assert gender.vocabulary == 2 and (gender.codes == 1).all()  # one value, "F", plus missing
    assert fields["item"][0].codes[:, 0].tolist() == list(range(1, len(catalogue.item_texts) + 1))
    with pytest.raises(ConfigError, match="no column 'colour'"):
        side_features(catalogue, LiftConfig(item_features=["colour"]))


def test_a_z_that_knows_the_answer_lifts_the_id_model() -> None:
    pairs = colour_pairs()
    users, items = len(pairs.user_texts), len(pairs.item_texts)
    fields = id_fields(users, items)
    colour = np.eye(len(COLOURS), dtype=np.float32)
    z = {"user": colour[np.arange(users) % 3], "item": colour[np.arange(items) % 3]}
    config = LiftConfig(
        epochs=20,
        patience=20,
        batch_size=32,
        learning_rate=1e-2,
        hidden=[16],
        embedding_dim=4,
        dropout=0.0,
    )
    baseline = score_lift(fields, None, pairs, config, [0, 1])
    lifted = score_lift(fields, z, pairs, config, [0, 1])
    assert min(lifted.test_auc) > 0.95
    assert np.mean(lifted.test_auc) > np.mean(baseline.test_auc) + 0.1
    assert rela_impr(lifted.test_auc[0], baseline.test_auc[0]) > 0


def test_rela_impr_is_the_relative_gain_above_chance() -> None:
    assert rela_impr(0.8, 0.75) == pytest.approx(20.0)
    assert rela_impr(0.75, 0.75) == 0.0


def test_the_lift_table_reports_the_configured_protocols_that_apply() -> None:
    pairs = colour_pairs()
    users, items = len(pairs.user_texts), len(pairs.item_texts)
    fields = id_fields(users, items)
    z = {"user": np.ones((users, 2), np.float32), "item": np.ones((items, 2), np.float32)}
    config = LiftConfig(epochs=1, hidden=[4], embedding_dim=2, protocols=["leak-free"])
    tables = lift_tables({"marc": z}, fields, pairs, config, [0], holdout=0.5)
    assert list(tables) == ["leak-free"] and list(tables["leak-free"].methods) == ["marc"]
    both = config.model_copy(update={"protocols": ["standard", "leak-free"]})
    # Without a holdout the encoder saw every row: there is no leak-free data to report.
    assert list(lift_tables({"marc": z}, fields, pairs, both, [0], holdout=0.0)) == ["standard"]
