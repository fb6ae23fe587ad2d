"""The GPU suite's encoding sections: MiniLM against sentence-transformers, decoder MFU,
padding-free batches, and the out-of-memory back-off (``benchmarks/gpu_suite.py`` runs them)."""

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks import gpu_models as gm
from benchmarks.gpu_suite import ENTITIES, SHAPE_KEYS, Context, timed
from marc_batch.encode.batching import plan_batches
from marc_batch.encode.marc import EntityEmbedder, prepare
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.model.backbone import Backbone
from marc_batch.model.marc import MarcEncoder

# Least cosine between a text's two outputs that counts as equal in bf16 (float32 on a CPU
# agrees to 1e-6); the report records the figure, and the batch-shape noise beside it.
TOLERANCE = 0.99


def encoder(ctx: Context) -> dict:
    """Ours (MARC encoder through EncoderRuntime) against sentence-transformers, same files."""
    from sentence_transformers import SentenceTransformer

    length = ctx.sizes.max_length
    with tempfile.TemporaryDirectory() as tmp:
        path = gm.minilm_dir(Path(tmp), tiny=ctx.sizes.limit is not None)
        ours = prepare(MarcEncoder(Backbone.load(path), ctx.config()), ctx.device)
        peer = SentenceTransformer(str(path), device=str(ctx.device), local_files_only=True)
    peer.to(ctx.dtype)
    peer.max_seq_length = length
    sides: dict[str, Callable[[str, list[str]], dict]] = {}
    for budget in ctx.sizes.encoder_budgets:

        def ours_run(entity: str, strings: list[str], budget: int = budget) -> dict:
            runtime = EncoderRuntime(EntityEmbedder(ours, entity), ctx.device, length, budget)
            return runtime.encode(strings)[1].summary()

        sides[f"ours_budget_{budget}"] = ours_run
    for size in ctx.sizes.peer_batch_sizes:

        def peer_run(entity: str, strings: list[str], size: int = size) -> dict:
            peer.encode(strings, batch_size=size, convert_to_numpy=True)
            return {}

        sides[f"peer_batch_{size}"] = peer_run
    best = {name: {entity: math.inf for entity in ENTITIES} for name in sides}
    stats: dict[str, dict] = {}
    for entity in ENTITIES:
        strings = ctx.strings(entity)
        for run in sides.values():  # warm-up: kernels, allocator, tokenizer caches
            run(entity, strings[:64])
        for _ in range(ctx.sizes.repeats):
            for name, run in sides.items():  # alternating, so drift hits every side alike
                seconds, summary = timed(ctx, lambda r=run, e=entity, s=strings: r(e, s))
                best[name][entity] = min(best[name][entity], seconds)
                if summary:
                    stats.setdefault(entity, summary)
    tokens = {entity: stats[entity]["tokens"] for entity in ENTITIES}
    runs = {}
    for name, per_entity in best.items():
        total = sum(per_entity.values())
        runs[name] = {
            "seconds": {entity: round(s, 4) for entity, s in per_entity.items()},
            "total_seconds": round(total, 4),
            "texts_per_second": round(sum(len(ctx.texts[e]) for e in ENTITIES) / total, 1),
            "tokens_per_second": round(sum(tokens.values()) / total, 1),
        }
    ours_default = runs[f"ours_budget_{ctx.sizes.encoder_budgets[0]}"]["total_seconds"]
    peer_default = runs[f"peer_batch_{ctx.sizes.peer_batch_sizes[0]}"]["total_seconds"]
    ours_best = min(v["total_seconds"] for k, v in runs.items() if k.startswith("ours"))
    peer_best = min(v["total_seconds"] for k, v in runs.items() if k.startswith("peer"))
    return {
        "model": "all-MiniLM-L6-v2 config, random weights; ours: MARC encoder (mean pooling, "
        "k = 64 head) via EncoderRuntime; peer: SentenceTransformer.encode (mean pooling, "
        "normalize), both from the same saved directory",
        "dtype": str(ctx.dtype),
        "max_length": length,
        "texts": {entity: len(ctx.texts[entity]) for entity in ENTITIES},
        "tokens": tokens,
        "padding_ratio": {e: stats[e]["padding_ratio"] for e in ENTITIES},
        "runs": runs,
        "speedup_defaults": round(peer_default / ours_default, 3),
        "speedup_best": round(peer_best / ours_best, 3),
        "goal": "speedup_defaults >= 1.3 (ours at encode.token_budget 16384 vs batch_size 32)",
    }


def decoders(ctx: Context, shapes: dict[str, tuple[int, tuple[int, ...]]]) -> dict:
    """Tokens/s and MFU of decoder-shaped encoders, end to end and forward-only."""
    results = {}
    for shape, (repeat, budgets) in shapes.items():
        encoder_ = ctx.decoder(shape)
        model = encoder_.backbone.model
        params = gm.matmul_parameters(model)
        strings = {entity: ctx.strings(entity, repeat) for entity in ENTITIES}
        rows = {entity: ctx.rows(strings[entity]) for entity in ENTITIES}
        warm = EncoderRuntime(
            EntityEmbedder(encoder_, "user"), ctx.device, ctx.sizes.max_length, budgets[-1]
        )
        warm.encode(strings["user"][:256])
        entry = {
            "config": {key: getattr(model.config, key) for key in SHAPE_KEYS},
            "dtype": str(ctx.dtype),
            "parameters": sum(p.numel() for p in model.parameters()),
            "matmul_parameters": params,
            "texts": sum(len(s) for s in strings.values()),
            "budgets": {},
        }
        for budget in budgets:
            if ctx.left() < 30:
                entry["budgets"][budget] = {"status": "skipped: out of time"}
                continue
            entry["budgets"][budget] = measure(ctx, encoder_, strings, rows, budget, params)
        if ctx.device.type == "cuda":
            entry["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        results[shape] = entry
        ctx.figures["sections"].setdefault("decoders", {"status": "running"})[shape] = entry
        ctx.write()
    return results


def measure(
    ctx: Context,
    encoder_: MarcEncoder,
    strings: dict[str, list[str]],
    rows: dict[str, list[list[int]]],
    budget: int,
    params: int,
    forward: bool = True,
) -> dict:
    """Both entities at ``budget``: through EncoderRuntime, and (``forward``) forward-only
    on its batches."""
    runtime_seconds, model_seconds, tokens, processed = 0.0, 0.0, 0, 0
    for entity in ENTITIES:
        runtime = EncoderRuntime(
            EntityEmbedder(encoder_, entity), ctx.device, ctx.sizes.max_length, budget
        )
        seconds, (_, stats) = timed(ctx, lambda r=runtime, s=strings[entity]: r.encode(s))
        runtime_seconds += seconds
        tokens += stats.tokens
        processed += stats.padded_tokens
        if not forward:
            continue
        batches = gm.padded(rows[entity], budget, ctx.tokenizer.pad_token_id, ctx.device)
        fn = gm.embed_padded(encoder_, entity)
        model_seconds += timed(ctx, lambda b=batches, f=fn: gm.forward_all(f, b))[0]
    figures = {
        "tokens": tokens,
        "padding_ratio": round(1 - tokens / processed, 4),
        "runtime_seconds": round(runtime_seconds, 3),
        "runtime_tokens_per_second": round(tokens / runtime_seconds, 1),
        "runtime_mfu": ctx.mfu(params, tokens, runtime_seconds),
    }
    if forward:
        figures["forward_seconds"] = round(model_seconds, 3)
        figures["forward_tokens_per_second"] = round(tokens / model_seconds, 1)
        figures["forward_mfu"] = ctx.mfu(params, tokens, model_seconds)
    return figures


def compiled(ctx: Context) -> dict:
    """The focus shape with ``encode.compile``: the first call's compile time, then the
    runtime at the largest budget, beside the same run eager; each side measured on its
    second pass over the texts, so neither pays for warming up.

    Runtime only: the forward-only harness runs under ``no_grad``, not the runtime's
    ``inference_mode``, and a compiled graph guards on that mode, so it would time
    recompiles rather than the forward."""
    shape = ctx.sizes.focus
    repeat, budgets = ctx.sizes.decoders[shape]
    budget = budgets[-1]
    encoder_ = ctx.decoder(shape)
    params = gm.matmul_parameters(encoder_.backbone.model)
    strings = {entity: ctx.strings(entity, repeat) for entity in ENTITIES}

    def second_pass() -> dict:
        measure(ctx, encoder_, strings, {}, budget, params, forward=False)
        return measure(ctx, encoder_, strings, {}, budget, params, forward=False)

    eager = second_pass()
    if ctx.device.type == "cuda":
        prepare(encoder_, ctx.device, compile=True)
        backend = "inductor"
    else:  # the CPU smoke run (encode.compile refuses a CPU): Dynamo traces, nothing is generated
        encoder_.backbone.model.compile(dynamic=True, backend="eager")
        backend = "eager (CPU smoke run)"
    first = EncoderRuntime(
        EntityEmbedder(encoder_, "user"), ctx.device, ctx.sizes.max_length, budget
    )
    compile_seconds, _ = timed(ctx, lambda: first.encode(strings["user"][:512]))
    result = second_pass()
    ctx.release()  # the compiled model must not serve the later sections
    return {
        "shape": shape,
        "budget": budget,
        "backend": backend,
        "first_call_seconds": round(compile_seconds, 1),
        "eager": eager,
        "compiled": result,
        "runtime_speedup": round(eager["runtime_seconds"] / result["runtime_seconds"], 3),
    }


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def packed(ctx: Context) -> dict:
    """The focus decoder on padding-free batches against padded ones: speed and equality.

    Padded batches at a quarter of the budget measure how far bf16 results move with the
    batch shapes alone, the scale against which the packed outputs' difference reads.
    """
    encoder_ = ctx.decoder(ctx.sizes.focus)
    model = encoder_.backbone.model
    budget, pad_id = ctx.sizes.packed_budget, ctx.tokenizer.pad_token_id
    kinds = {
        "padded": (lambda r: gm.padded(r, budget, pad_id, ctx.device), gm.embed_padded, "sdpa"),
        "packed": (lambda r: gm.packed(r, budget, ctx.device), gm.embed_packed, gm.VARLEN),
        "quarter": (
            lambda r: gm.padded(r, budget // 4, pad_id, ctx.device),
            gm.embed_padded,
            "sdpa",
        ),
    }
    seconds = dict.fromkeys(kinds, 0.0)
    worst = {"packed": 1.0, "quarter": 1.0}
    relative, tokens, processed = 0.0, 0, 0
    for entity in ENTITIES:
        rows = ctx.rows(ctx.strings(entity))
        outputs = {}
        for kind, (build, embed, attention) in kinds.items():
            batches, fn = build(rows), embed(encoder_, entity)
            first = gm.Batches(batches.positions[:1], batches.inputs[:1], 0, 0)
            gm.set_attention(model, attention)
            try:
                gm.forward_all(fn, first)  # warm-up
                spent, outs = timed(ctx, lambda f=fn, b=batches: gm.forward_all(f, b))
            finally:
                gm.set_attention(model, "sdpa")
            seconds[kind] += spent
            outputs[kind] = gm.assemble(batches, outs, len(rows))
            if kind == "padded":
                tokens, processed = tokens + batches.tokens, processed + batches.processed
        for kind in worst:
            worst[kind] = min(worst[kind], float(cosines(outputs["padded"], outputs[kind]).min()))
        a, b = outputs["padded"], outputs["packed"]
        relative = max(relative, float(np.abs(a - b).max() / np.abs(a).max()))
    return {
        "shape": ctx.sizes.focus,
        "budget": budget,
        "method": gm.varlen_method(ctx.device),
        "tokens": tokens,
        "padded_padding_ratio": round(1 - tokens / processed, 4),
        "padded_tokens_per_second": round(tokens / seconds["padded"], 1),
        "packed_tokens_per_second": round(tokens / seconds["packed"], 1),
        "speedup": round(seconds["padded"] / seconds["packed"], 3),
        "min_cosine": round(worst["packed"], 6),
        "max_relative_difference": round(relative, 5),
        "padded_quarter_budget_min_cosine": round(worst["quarter"], 6),
        "equal_within_tolerance": worst["packed"] >= TOLERANCE,
        "tolerance": f"cosine >= {TOLERANCE} per text (z, k = 64): bf16 rounding through "
        "every layer, with batch shapes that differ",
    }


def oom(ctx: Context) -> dict:
    """A token budget far above device memory: the runtime must halve and still be right."""
    encoder_ = ctx.decoder(ctx.sizes.focus)
    config = encoder_.backbone.model.config
    embedder = EntityEmbedder(encoder_, "user")
    strings = ctx.strings("user")
    length = ctx.sizes.max_length
    reference, ref_stats = EncoderRuntime(embedder, ctx.device, length, 16_384).encode(strings)
    # Hidden states the forward keeps: (layers + 1) x hidden per token, in the run's dtype.
    per_token = (config.num_hidden_layers + 1) * config.hidden_size * ctx.dtype.itemsize
    repeat = 2
    if ctx.device.type == "cuda":
        memory = torch.cuda.get_device_properties(ctx.device).total_memory
        repeat = max(2, math.ceil(2 * memory / per_token / ref_stats.tokens))
    texts = strings * repeat
    lengths = np.tile([len(row) for row in ctx.rows(strings)], repeat)
    first = plan_batches(lengths, ctx.sizes.oom_budget)[0]
    first_tokens = len(first) * int(lengths[first].max())
    whole = {"window": len(texts), "first_window": len(texts)}  # one batch over memory, at once
    runtime = EncoderRuntime(embedder, ctx.device, length, ctx.sizes.oom_budget, **whole)
    seconds, (out, stats) = timed(ctx, lambda: runtime.encode(texts))
    expected = np.tile(reference, (repeat, 1))
    cosine = cosines(out, expected)
    return {
        "shape": ctx.sizes.focus,
        "texts": len(texts),
        "tokens": stats.tokens,
        "requested_budget": ctx.sizes.oom_budget,
        "first_batch_padded_tokens": first_tokens,
        "first_batch_hidden_states_gib": round(first_tokens * per_token / 2**30, 1),
        "settled_budget": runtime.token_budget,
        "oom_retries": stats.oom_retries,
        "exercised": stats.oom_retries > 0,
        "batches": stats.batches,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(stats.tokens / seconds, 1),
        "min_cosine_vs_reference": round(float(cosine.min()), 6),
        "correct": bool(cosine.min() >= TOLERANCE),
        "reference": "the same texts once, at encode.token_budget 16384",
        **(
            {"max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
            if ctx.device.type == "cuda"
            else {"note": "CPU: no out-of-memory can happen"}
        ),
    }


def large(ctx: Context) -> dict:
    """The 7B shape, if the device has the memory (weights alone are 15 GiB in bf16)."""
    if ctx.sizes.large is None:
        return {"status": "skipped: not in this mode"}
    memory = torch.cuda.get_device_properties(ctx.device).total_memory / 2**30
    if memory < 40:
        return {"status": f"skipped: {memory:.0f} GiB of device memory"}
    return {"shapes": decoders(ctx, {ctx.sizes.large: (1, (16_384,))})}
