"""The GPU suite's models and forward harnesses: random weights from published shapes.

Throughput does not depend on weight values, so no weights travel: the
MiniLM-shaped encoder is all-MiniLM-L6-v2's config with random weights saved
to a temporary directory (our loader and sentence-transformers then read the
same files), and the decoders are Qwen2 configs of the published sizes built
directly on the device in the requested dtype. ``tiny`` swaps each for a
small config of the same class, for the CPU smoke run.

Padding-free batching packs a batch's sequences into one row with position
ids restarting at 0 per sequence, and attends within each sequence only:
on CUDA through SDPA on nested (jagged) tensors, which dispatches to the
variable-length flash / memory-efficient kernels; on CPU, where the nested
path has no causal kernel, one SDPA call per sequence (smoke runs only).
"""

import itertools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AttentionInterface, AutoModel, BertConfig, BertModel, Qwen2Config

from benchmarks.gpu_inputs import MINILM, MINILM_FILES
from marc_batch.encode.batching import plan_batches
from marc_batch.encode.runtime import pad
from marc_batch.model.marc import MarcEncoder

MINILM_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
# Published sizes of Qwen2-0.5B, -1.5B and -7B (hidden, layers, heads, kv heads, MLP, vocab).
QWEN2 = {
    "qwen2-0.5b": (896, 24, 14, 2, 4864, 151936),
    "qwen2-1.5b": (1536, 28, 12, 2, 8960, 151936),
    "qwen2-7b": (3584, 28, 28, 4, 18944, 152064),
}
QWEN2_TINY = (64, 2, 4, 2, 128, 30522)
VARLEN = "marc_varlen"


def minilm_dir(target: Path, tiny: bool, seed: int = 0) -> Path:
    """all-MiniLM-L6-v2's directory layout and tokenizer with random weights (float32)."""
    for name in MINILM_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MINILM / name, target / name)
    config = BertConfig.from_json_file(str(MINILM / "config.json"))
    if tiny:
        config.update({**MINILM_TINY, "intermediate_size": 2 * MINILM_TINY["hidden_size"]})
    pooling = target / "1_Pooling" / "config.json"
    settings = json.loads(pooling.read_text())
    settings["word_embedding_dimension"] = config.hidden_size
    pooling.write_text(json.dumps(settings, indent=2))
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(target)
    return target


def decoder(shape: str, device: torch.device, dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    """A Qwen2 base model of ``shape`` ('tiny' or a :data:`QWEN2` key), random, on ``device``."""
    hidden, layers, heads, kv_heads, mlp, vocab = QWEN2_TINY if shape == "tiny" else QWEN2[shape]
    config = Qwen2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=mlp,
        vocab_size=vocab,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModel.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def matmul_parameters(model: torch.nn.Module) -> int:
    """Weights of the linear layers every token passes through (not the embedding tables,
    which are looked up; not BERT's pooler, which sees one token per text; no LM head runs).
    Model FLOPs per token are twice this."""
    return sum(
        module.weight.numel()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and "pooler" not in name
    )


def set_attention(model: torch.nn.Module, name: str) -> None:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(name)
    else:
        model.config._attn_implementation = name


# Set when the nested-tensor kernels fail on a device: the reason, recorded with the figures.
FALLBACK: dict[str, str] = {}


def varlen_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """Causal attention within each packed sequence: ``query`` is (1, heads, tokens, dim)."""
    offsets, longest = kwargs["varlen_offsets"], kwargs["varlen_max"]
    q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # (tokens, heads, dim)
    if (groups := q.shape[1] // k.shape[1]) > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    if q.is_cuda and not FALLBACK:
        try:
            nested = [
                torch.nested.nested_tensor_from_jagged(
                    x.contiguous(), offsets, max_seqlen=longest
                ).transpose(1, 2)
                for x in (q, k, v)
            ]
            out = F.scaled_dot_product_attention(*nested, is_causal=True, scale=scaling)
            return out.transpose(1, 2).values()[None], None
        except torch.OutOfMemoryError:
            raise
        except (RuntimeError, NotImplementedError, TypeError) as error:
            FALLBACK["error"] = f"{type(error).__name__}: {error}"[:300]
    out = torch.cat(
        [
            F.scaled_dot_product_attention(
                *(x[a:b].transpose(0, 1) for x in (q, k, v)), is_causal=True, scale=scaling
            ).transpose(0, 1)
            for a, b in itertools.pairwise(offsets.tolist())
        ]
    )
    return out[None], None


AttentionInterface.register(VARLEN, varlen_attention)


def varlen_method(device: torch.device) -> str:
    if device.type != "cuda":
        return "one SDPA call per sequence (CPU: nested tensors have no causal kernel there)"
    if FALLBACK:
        return f"one SDPA call per sequence: nested tensors failed ({FALLBACK['error']})"
    return "SDPA on nested (jagged) tensors: variable-length flash / memory-efficient kernels"


@dataclass
class Batches:
    """Device-resident batches of one text set: padded (ids, mask) or packed."""

    positions: list[np.ndarray]
    inputs: list[tuple[torch.Tensor, ...]]
    tokens: int
    processed: int  # tokens the model computes, padding included

    @property
    def padding_ratio(self) -> float:
        return 1.0 - self.tokens / self.processed if self.processed else 0.0


def padded(rows: list[list[int]], budget: int, pad_id: int, device: torch.device) -> Batches:
    """The runtime's plan (length-bucketed, at most ``budget`` padded tokens), padded."""
    lengths = np.array([len(row) for row in rows])
    plans = plan_batches(lengths, budget)
    inputs = [tuple(t.to(device) for t in pad([rows[i] for i in plan], pad_id)) for plan in plans]
    return Batches(plans, inputs, int(lengths.sum()), sum(ids.numel() for ids, _ in inputs))


def packed(rows: list[list[int]], budget: int, device: torch.device) -> Batches:
    """Sequences in input order, concatenated into rows of at most ``budget`` real tokens."""
    plans, current, size = [], [], 0
    for index, row in enumerate(rows):
        if current and size + len(row) > budget:
            plans.append(np.array(current))
            current, size = [], 0
        current.append(index)
        size += len(row)
    if current:
        plans.append(np.array(current))
    inputs = []
    for plan in plans:
        chosen = [rows[i] for i in plan]
        lengths = torch.tensor([len(row) for row in chosen])
        ids = torch.tensor([token for row in chosen for token in row])
        positions = torch.cat([torch.arange(n) for n in lengths.tolist()])
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        longest = torch.tensor(int(lengths.max()))
        inputs.append(tuple(t.to(device) for t in (ids, positions, offsets, longest)))
    tokens = sum(len(row) for row in rows)
    return Batches(plans, inputs, tokens, tokens)


def embed_padded(encoder: MarcEncoder, entity: str) -> Callable[..., torch.Tensor]:
    def run(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = encoder.backbone(ids, mask)
        return encoder.heads(encoder.state(hidden, mask), entity)

    return run


def embed_packed(encoder: MarcEncoder, entity: str) -> Callable[..., torch.Tensor]:
    """z of each packed sequence: its last token's state of the encoder's layer, compressed."""

    def run(ids, positions, offsets, longest) -> torch.Tensor:
        out = encoder.backbone.model(
            input_ids=ids[None],
            position_ids=positions[None],
            output_hidden_states=True,
            use_cache=False,
            varlen_offsets=offsets,
            varlen_max=int(longest),
        )
        h = out.hidden_states[encoder.layer][0, offsets[1:] - 1]
        return encoder.heads(h, entity)

    return run


def forward_all(fn: Callable[..., torch.Tensor], batches: Batches) -> list[torch.Tensor]:
    """Forward every batch; the outputs stay on the device (time it with a synchronize).

    ``no_grad`` rather than the runtime's ``inference_mode``: nested tensors are views,
    which inference mode has had trouble with; for a forward the two cost the same."""
    with torch.no_grad():
        return [fn(*inputs) for inputs in batches.inputs]


def assemble(batches: Batches, outs: list[torch.Tensor], texts: int) -> np.ndarray:
    """Batch outputs as one float32 array in input order."""
    result = np.empty((texts, outs[0].shape[1]), dtype=np.float32)
    for plan, out in zip(batches.positions, outs, strict=True):
        result[plan] = out.float().cpu().numpy()
    return result
