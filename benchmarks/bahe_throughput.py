"""User-encoding throughput: BAHE users against text users and sentence-transformers.

Usage: python -m benchmarks.bahe_throughput --out benchmarks/results/bahe_throughput.json
       (add --quick for a smoke run on a few users)

All sides run the bundled all-MiniLM-L6-v2 on MovieLens-100K's 943 users as
ingestion renders them, in one process, with the same thread count:

- ``text``: the MARC encoder as a text-user refresh runs it (``EncoderRuntime``,
  each user text cut to ``--max-length`` tokens, every layer);
- ``bahe_cold``: the BAHE path as a refresh of a new model runs it
  (``encode_users`` with no stored vectors: every distinct behaviour through the
  layers below the split once, then each user's sequence through the layers
  above it);
- ``bahe_warm``: the same with every behaviour vector already stored, as on the
  next nightly refresh of the same model (profiles below the split, sequences
  above it);
- ``peer``: ``SentenceTransformer.encode`` on the same user texts.

Each side runs ``--repeats`` times, alternating, and the best time counts
(the machine is shared); the ratios are what to read. The MARC heads are
untrained: their cost is the same on every side and tiny.
"""

import argparse
import time
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from benchmarks.common import command, machine, save
from marc_batch.config import load_config
from marc_batch.config.model import ModelConfig
from marc_batch.data.ingest import ingest
from marc_batch.encode.marc import EntityEmbedder, prepare
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.model.backbone import Backbone, resolve_path
from marc_batch.model.bahe import BaheUserEncoder, encode_users, users_from_table
from marc_batch.model.marc import MarcEncoder

GOAL = 4.0  # BAHE users per second over sentence-transformers'


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--token-budget", type=int, default=8192)
    parser.add_argument("--peer-batch-size", type=int, default=32)
    parser.add_argument("--split-layer", type=int, default=-2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = load_config()
    config = base.model_copy(
        update={"model": base.model.model_copy(update={"user_encoder": "bahe"})}
    )
    catalogue, _ = ingest(config)
    table = catalogue.user_texts.slice(0, 8) if args.quick else catalogue.user_texts
    texts = table["text"].to_pylist()
    users = users_from_table(table)
    device = torch.device("cpu")
    path = resolve_path("minilm")
    model = ModelConfig(
        user_encoder="bahe",
        bahe={"split_layer": args.split_layer},
        train={"user_max_length": args.max_length},
    )
    encoder = prepare(MarcEncoder(Backbone.load(path), model), device)
    runtime = EncoderRuntime(
        EntityEmbedder(encoder, "user"), device, args.max_length, args.token_budget
    )
    peer = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    peer.max_seq_length = args.max_length

    def text() -> None:
        runtime.encode(texts)

    def bahe_cold() -> None:
        encode_users(encoder, BaheUserEncoder.of(encoder), users, {}, args.token_budget)

    bahe = BaheUserEncoder.of(encoder)
    _, stored = encode_users(encoder, bahe, users, {}, args.token_budget)

    def bahe_warm() -> None:
        encode_users(encoder, bahe, users, stored, args.token_budget)

    def sentence_transformers() -> None:
        peer.encode(texts, batch_size=args.peer_batch_size, convert_to_numpy=True)

    sides = {"text": text, "bahe_cold": bahe_cold, "bahe_warm": bahe_warm}
    sides["peer"] = sentence_transformers
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, run in sides.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    lengths = bahe.sequence_lengths(users)
    results = {
        name: {
            "seconds": round(seconds, 3),
            "users_per_second": round(len(users) / seconds, 1),
            "speedup_over_peer": round(best["peer"] / seconds, 3),
        }
        for name, seconds in best.items()
    }
    figures = {
        "command": command("benchmarks.bahe_throughput", argv),
        "machine": f"{machine()}; {args.threads} threads",
        "model": f"all-MiniLM-L6-v2 (bundled), max_length {args.max_length}, "
        f"BAHE split layer {bahe.split} of {encoder.backbone.num_layers}",
        "peer": f"sentence-transformers encode, batch_size {args.peer_batch_size}",
        "users": len(users),
        "distinct_behaviours": len(stored),
        "bahe_sequence_positions": sum(lengths),
        "sides": results,
        "bahe_cold_over_text": round(best["text"] / best["bahe_cold"], 3),
        "bahe_warm_over_text": round(best["text"] / best["bahe_warm"], 3),
        "goal": f"BAHE users/s >= {GOAL}x sentence-transformers'",
        "goal_met": {
            name: results[name]["speedup_over_peer"] >= GOAL for name in ("bahe_cold", "bahe_warm")
        },
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
