"""The GPU suite's training figure: MARC training steps as ``Trainer.step`` runs them.

Per backbone: the frozen pass (``build_cache``, the layers below the LoRA
ones, run once in float32 as the recipe does), then training steps on the
real ML-100K training pairs (LoRA on the top layers, bf16 autocast on CUDA),
each one ``Trainer.step`` on the pairs that ``Trainer.fit`` would sample.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import gpu_models as gm
from marc_batch.config import ModelConfig
from marc_batch.model.backbone import Backbone
from marc_batch.model.marc import MarcEncoder, MarcObjective
from marc_batch.train.cache import build_cache
from marc_batch.train.pairs import Pairs, Split
from marc_batch.train.trainer import Trainer


def _backbone(ctx, name: str, directory: Path) -> Backbone:
    """Float32 weights on the device: the recipe trains under autocast, not in bf16."""
    if name == "minilm":
        path = gm.minilm_dir(directory, tiny=ctx.sizes.limit is not None)
        return Backbone.load(path).to(ctx.device)
    return Backbone(gm.decoder(name, ctx.device, torch.float32), ctx.tokenizer)


def _one(ctx, name: str, lora_layers: int) -> dict:
    config = ModelConfig(lora={"layers": lora_layers})
    train = config.train
    with tempfile.TemporaryDirectory() as tmp:
        backbone = _backbone(ctx, name, Path(tmp))
    start = backbone.num_layers - min(lora_layers, backbone.num_layers)
    strings = {entity: ctx.strings(entity) for entity in ("user", "item")}
    lengths = {"user": train.user_max_length, "item": train.item_max_length}
    ctx.sync()
    begun = time.perf_counter()
    caches = {
        entity: build_cache(
            backbone, strings[entity], lengths[entity], start, train.encode_batch_tokens
        )
        for entity in ("user", "item")
    }
    ctx.sync()
    frozen_seconds = time.perf_counter() - begun
    frozen_tokens = sum(len(ids) for cache in caches.values() for ids in cache.input_ids)
    backbone.add_lora(config.lora)
    encoder = MarcEncoder(backbone, config).to(ctx.device)
    objective = MarcObjective(backbone.hidden_size, config).to(ctx.device)
    users, items, labels = (ctx.pairs[key] for key in ("user", "item", "label"))
    keep = (users < len(strings["user"])) & (items < len(strings["item"]))
    split = Split(
        users[keep].astype(np.int64), items[keep].astype(np.int64), labels[keep].astype(np.float32)
    )
    pairs = Pairs(strings["user"], strings["item"], {"train": split})
    trainer = Trainer(config, encoder, objective, caches, pairs)
    order = trainer.rng.permutation(np.array(sorted(trainer.user_pairs)))
    chunks = [
        order[i : i + train.users_per_step] for i in range(0, len(order), train.users_per_step)
    ]
    steps = ctx.sizes.warmup_steps + ctx.sizes.train_steps
    plans = [trainer._sample_step(chunks[i % len(chunks)]) for i in range(steps)]
    timed_plans = plans[ctx.sizes.warmup_steps :]
    # Tokens through the adapted layers: every distinct user and item text of a step, once.
    tokens = sum(
        len(caches[entity].input_ids[i])
        for plan in timed_plans
        for entity, rows in (("user", split.users[plan]), ("item", split.items[plan]))
        for i in np.unique(rows)
    )
    for plan in plans[: ctx.sizes.warmup_steps]:
        trainer.step(plan)
    ctx.sync()
    begun = time.perf_counter()
    for plan in timed_plans:
        trainer.step(plan)
    ctx.sync()
    seconds = time.perf_counter() - begun
    figures = {
        "backbone": name,
        "lora_layers": lora_layers,
        "adapted_from_layer": start,
        "trainable_parameters": sum(p.numel() for p in trainer._trainable().values()),
        "users_per_step": train.users_per_step,
        "pairs_per_user": train.pairs_per_user,
        "frozen_pass_seconds": round(frozen_seconds, 3),
        "frozen_pass_tokens_per_second": round(frozen_tokens / frozen_seconds, 1),
        "steps": ctx.sizes.train_steps,
        "steps_per_second": round(ctx.sizes.train_steps / seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1),
        "pairs_per_second": round(sum(len(plan) for plan in timed_plans) / seconds),
        "autocast": "bfloat16" if ctx.device.type == "cuda" else "off (CPU)",
    }
    if ctx.device.type == "cuda":
        figures["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return figures


def training(ctx) -> dict:
    """Steps/s and tokens/s (through the adapted layers) of each training backbone."""
    results = {}
    for name, lora_layers in ctx.sizes.train:
        ctx.release()
        results[name if name != "tiny" else "tiny-qwen2"] = _one(ctx, name, lora_layers)
    ctx.release()
    return {
        "recipe": "ModelConfig defaults (users_per_step 32, pairs_per_user 8, user/item "
        "max_length 128/64, k = 64, DCN matching, InfoNCE), LoRA layers as listed",
        "backbones": results,
    }
