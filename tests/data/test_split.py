import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.config import SplitConfig
from marc_batch.data.ingest import ingest
from marc_batch.data.split import split_interactions


def log(users: int, per_user: int) -> pa.Table:
    rows = [
        (f"u{u}", f"i{t}", float(1 + t % 5), t * 10 + u)
        for u in range(users)
        for t in range(per_user)
    ]
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "rating": [r[2] for r in rows],
            "timestamp": pa.array([r[3] * 1_000_000 for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


def test_per_user_split_holds_out_each_users_latest_ratings() -> None:
    table = split_interactions(log(3, 20), SplitConfig(), positive_rating=4.0)
    for user in ("u0", "u1", "u2"):
        rows = table.filter(pc.equal(table["user_id"], user)).to_pylist()
        by_split = {
            name: [r["timestamp"] for r in rows if r["split"] == name]
            for name in ("train", "valid", "test")
        }
        assert [len(by_split[name]) for name in ("train", "valid", "test")] == [16, 2, 2]
        assert (
            max(by_split["train"])
            < min(by_split["valid"])
            <= max(by_split["valid"])
            < min(by_split["test"])
        )
    assert table["label"].to_pylist() == [int(r >= 4.0) for r in table["rating"].to_pylist()]


def test_users_with_short_histories_keep_them_in_train() -> None:
    table = split_interactions(log(1, 4), SplitConfig(), positive_rating=4.0)
    assert set(table["split"].to_pylist()) == {"train"}


def test_global_split_cuts_the_log_in_time() -> None:
    table = split_interactions(log(4, 10), SplitConfig(kind="global-temporal"), positive_rating=4.0)
    rows = table.to_pylist()
    test = [r["timestamp"] for r in rows if r["split"] == "test"]
    train = [r["timestamp"] for r in rows if r["split"] == "train"]
    assert len(test) == 4 and max(train) < min(test)


def test_movielens_per_user_split_leaves_every_test_user_with_history(config) -> None:
    catalogue, report = ingest(config)
    table = catalogue.interactions
    train_users = set(table.filter(pc.equal(table["split"], "train"))["user_id"].to_pylist())
    test_users = set(table.filter(pc.equal(table["split"], "test"))["user_id"].to_pylist())
    assert test_users <= train_users
    assert report.split == {"train": 80808, "valid": 9596, "test": 9596}
