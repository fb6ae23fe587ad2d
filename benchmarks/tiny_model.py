"""Registered MARC encoders for benchmarks, built locally without training.

``tiny``: a random 2-layer BERT with hidden size 32 and MiniLM's WordPiece
tokenizer, so that generated catalogue texts tokenise as real ones do and a
million of them encode in minutes on a CPU. ``minilm``: the bundled
all-MiniLM-L6-v2. Both get LoRA adapters and randomly initialised heads and
are saved and registered exactly as ``marc-batch train`` would register
them; weights do not change the cost of encoding, so an untrained encoder
times the same as a trained one.
"""

from pathlib import Path

import torch
from transformers import BertConfig, BertModel

from marc_batch.config import LoraConfig, ModelConfig
from marc_batch.model.artifact import save_artifact, staging_dir
from marc_batch.model.backbone import Backbone, load_tokenizer, resolve_path, weights_sha256
from marc_batch.model.marc import MarcEncoder
from marc_batch.model.registry import Registry

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}


def tiny_backbone(directory: Path, seed: int = 0) -> Path:
    """Save a random tiny BERT with MiniLM's tokenizer to ``directory``."""
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(resolve_path("minilm"))
    model = BertModel(BertConfig(vocab_size=len(tokenizer), **TINY))
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


def build_registry(root: Path, backbone: str = "tiny", k: int = 64, seed: int = 0) -> Path:
    """Register an encoder on ``backbone`` ('tiny' or 'minilm') as current under ``root/models``."""
    if backbone == "tiny":
        path = tiny_backbone(root / "backbone", seed)
        config = ModelConfig(backbone=str(path), k=k, head_hidden=64, lora=LoraConfig(rank=4))
    else:
        path = resolve_path(backbone)
        config = ModelConfig(backbone=backbone, k=k)
    torch.manual_seed(seed)
    model = Backbone.load(path)
    model.add_lora(config.lora)
    encoder = MarcEncoder(model, config)
    registry = root / "models"
    staged = staging_dir(registry)
    save_artifact(encoder, staged, config.backbone, weights_sha256(path), {"untrained": 1.0})
    Registry(registry).register(staged)
    return registry
