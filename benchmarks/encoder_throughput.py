"""Encoder throughput: the batch runtime against sentence-transformers, same weights and texts.

Usage: python -m benchmarks.encoder_throughput --out benchmarks/results/encoder_throughput.json
       (add --quick for a smoke run on a few texts)

Both sides run the bundled all-MiniLM-L6-v2 on MovieLens-100K's item and user
texts (as ingestion renders them) with the same maximum length and thread
count. Ours is the MARC encoder as the refresh runs it (backbone, pooling,
compression head) through ``EncoderRuntime``; the peer is
``SentenceTransformer.encode`` (backbone and pooling). Each side runs
``--repeats`` times, alternating, and the best time counts, which damps the
noise of a shared machine; the ratio is what to read.
"""

import argparse
import time
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from benchmarks.common import command, machine, save
from marc_batch.config import ModelConfig, load_config
from marc_batch.data.ingest import ingest
from marc_batch.encode.marc import EntityEmbedder, prepare
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.model.backbone import Backbone, resolve_path
from marc_batch.model.marc import MarcEncoder


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--token-budget", type=int, default=8192)
    parser.add_argument("--peer-batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    catalogue, _ = ingest(load_config())
    texts = {
        "item": catalogue.item_texts["text"].to_pylist(),
        "user": catalogue.user_texts["text"].to_pylist(),
    }
    if args.quick:
        texts = {entity: values[:32] for entity, values in texts.items()}
    device = torch.device("cpu")
    path = resolve_path("minilm")
    config = ModelConfig(
        train={"user_max_length": args.max_length, "item_max_length": args.max_length}
    )
    encoder = prepare(MarcEncoder(Backbone.load(path), config), device)
    peer = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    peer.max_seq_length = args.max_length

    results = {}
    for entity, values in texts.items():
        runtime = EncoderRuntime(
            EntityEmbedder(encoder, entity), device, args.max_length, args.token_budget
        )
        ours, theirs, stats = [], [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            _, stats = runtime.encode(values)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            peer.encode(values, batch_size=args.peer_batch_size, convert_to_numpy=True)
            theirs.append(time.perf_counter() - start)
        results[entity] = {
            "texts": len(values),
            "tokens": stats.tokens,
            "padding_ratio": round(stats.padding_ratio, 4),
            "ours_seconds": round(min(ours), 3),
            "peer_seconds": round(min(theirs), 3),
            "ours_texts_per_second": round(len(values) / min(ours), 1),
            "peer_texts_per_second": round(len(values) / min(theirs), 1),
            "speedup": round(min(theirs) / min(ours), 3),
        }
    total_ours = sum(r["ours_seconds"] for r in results.values())
    total_peer = sum(r["peer_seconds"] for r in results.values())
    figures = {
        "command": command("benchmarks.encoder_throughput", argv),
        "machine": f"{machine()}; {args.threads} threads",
        "model": "all-MiniLM-L6-v2 (bundled), max_length " + str(args.max_length),
        "peer": f"sentence-transformers encode, batch_size {args.peer_batch_size}",
        "entities": results,
        "speedup": round(total_peer / total_ours, 3),
        "goal": "speedup >= 1.0, target 1.3",
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
