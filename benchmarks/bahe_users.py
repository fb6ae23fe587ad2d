"""BAHE users at scale: the user phase's cost per user as users grow, and the next night's cache.

Usage: python -m benchmarks.bahe_users --users 10000 100000 1000000 --text-max 100000 \
           --out benchmarks/results/bahe_users.json

Each size is a generated catalogue (``benchmarks/catalogue.py``: ``--items``
items, N users with 20 to 100 distinct items each, drawn with popularity
skew) refreshed end to end in a fresh process by an untrained MARC encoder
on the tiny random BERT (``fixtures/encoders.py``), one encode thread, with
BAHE users: layer 0 encodes each distinct behaviour, layer 1 each user's
sequence. The user phase is the driver's behaviour step (``stage_behaviours``,
traced) plus the user shards' encoding (the report's encode seconds). The
peer is the same encoder with text users on the same catalogue, at the sizes
up to ``--text-max``.

Then the next night: a tenth of the users rate 1 to 5 more items (same skew,
later timestamps; a repeat of an item the user rated is quarantined as a
duplicate and its newest rating kept, as for real input), and the same BAHE
model refreshes again on the first night's store. Its figure is the share of
the night's distinct behaviours served from the store.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.catalogue import (
    INTERACTIONS_SCHEMA,
    config_for,
    interaction_blocks,
    write_catalogue,
)
from benchmarks.common import child, command, machine, save
from fixtures.encoders import benchmark_registry

MODULE = "benchmarks.bahe_users"
CHILD = "benchmarks.refresh_cost"


def next_night(paths: dict[str, Path], users: int, items: int, root: Path) -> dict[str, Path]:
    """The catalogue a night later: the interactions plus new ratings by a tenth of the users."""
    path = root / "interactions.parquet"
    root.mkdir(parents=True, exist_ok=True)
    last = pq.read_table(paths["interactions"], columns=["timestamp"])["timestamp"]
    after = pc.max(last).as_py() + 86_400
    with pq.ParquetWriter(path, INTERACTIONS_SCHEMA) as writer:
        for batch in pq.ParquetFile(paths["interactions"]).iter_batches():
            writer.write_batch(batch)
        for block in interaction_blocks(max(1, users // 10), items, (1, 5), seed=7):
            later = pc.add(block["timestamp"], after - 880_000_000)
            writer.write_table(block.set_column(3, "timestamp", later))
    return {**paths, "interactions": path}


def user_phase(figures: dict) -> float:
    """Seconds of the user phase: the behaviour step in the driver plus the user shards."""
    staged = figures["phases"].get("stage_behaviours", {}).get("seconds", 0.0)
    return staged + figures["encode"]["user"]["seconds"]


def refresh(
    root: Path, name: str, sources: dict[str, Path], registries: dict[str, Path], inline: bool
) -> dict:
    """Refresh ``sources`` in a fresh process with the encoder ``name`` starts with, into that
    encoder's store under ``root`` (the next night's BAHE run finds the first night's there)."""
    encoder = name.split("_")[0]
    config = config_for(
        sources,
        registries[encoder],
        root / f"store-{encoder}",
        encode={"threads": 1},
        model={"user_encoder": encoder},
    )
    config_path = root / f"{name}.json"
    config_path.write_text(config.model_dump_json())
    figures = child(CHILD, "--child", "refresh", "--config", config_path, inline=inline)
    seconds = user_phase(figures)
    print(root.name, name, round(seconds, 1), file=sys.stderr, flush=True)
    return {
        "refresh": figures,
        "user_phase_seconds": round(seconds, 3),
        "user_phase_ms_per_user": round(1000 * seconds / figures["rows"]["user"], 4),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--text-max", type=int, default=100_000, help="largest size for text users")
    parser.add_argument("--work", type=Path, help="where catalogues and stores go (temporary)")
    parser.add_argument("--inline", action="store_true", help="no fresh processes (smoke runs)")
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-bahe-users-"))
    registries = {
        encoder: benchmark_registry(work / f"model-{encoder}", "tiny", user_encoder=encoder)
        for encoder in ("bahe", "text")
    }
    sizes = {}
    for users in args.users:
        root = work / str(users)
        paths = write_catalogue(root / "catalogue", args.items, users)
        result = {"bahe": refresh(root, "bahe", paths, registries, args.inline)}
        if users <= args.text_max:
            result["text"] = refresh(root, "text", paths, registries, args.inline)
        tomorrow = next_night(paths, users, args.items, root / "next-night")
        result["bahe_next_night"] = refresh(
            root, "bahe_next_night", tomorrow, registries, args.inline
        )
        counts = result["bahe_next_night"]["refresh"]["behaviours"]
        result["next_night_cache_share"] = round(counts["reused"] / counts["distinct"], 4)
        if "text" in result:
            result["bahe_speedup_over_text"] = round(
                result["text"]["user_phase_seconds"] / result["bahe"]["user_phase_seconds"], 3
            )
        sizes[str(users)] = result
    smallest, largest = str(min(args.users)), str(max(args.users))
    per_user = {size: sizes[size]["bahe"]["user_phase_ms_per_user"] for size in sizes}
    figures = {
        "command": command(MODULE, argv),
        "machine": machine(),
        "model": "untrained MARC encoder on a tiny random BERT (2 layers, hidden 32), k 64; "
        "BAHE split at layer 1 (behaviours through layer 0, users through layer 1)",
        "catalogue": f"{args.items} generated items; users with 20-100 behaviours each, "
        "popularity-skewed (P(rank r) ~ 1/r)",
        "next_night": "a tenth of the users rate 1-5 more items; the same model refreshes again",
        "encode_threads": 1,
        "fresh_processes": not args.inline,
        "sizes": sizes,
        "bahe_ms_per_user": per_user,
        "bahe_ms_per_user_ratio": round(per_user[largest] / per_user[smallest], 3),
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
