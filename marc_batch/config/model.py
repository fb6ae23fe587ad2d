"""Settings of the MARC encoder and of its training recipe.

The paper (known to us by its abstract only) leaves most architectural and
training choices open; each one is a field here so that it can be ablated
from a config file, and ``docs/marc.md`` says why each default was chosen.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Pooling = Literal["auto", "mean", "last"]
Estimator = Literal["infonce", "hsic", "reconstruction"]


class LoraConfig(BaseModel):
    """Low-rank adapters on the backbone; only the top ``layers`` are adapted."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16.0, gt=0.0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    layers: int = Field(
        1,
        ge=1,
        description="Adapt the top N transformer layers; the frozen layers below them run once "
        "and their output is cached for the whole training run.",
    )
    target_modules: list[str] | None = Field(
        None,
        description="Linear modules to adapt; default: every attention and MLP projection "
        "of the architecture family.",
    )


class BaheConfig(BaseModel):
    """The BAHE user encoder: behaviours become vectors below ``split_layer``.

    Each distinct behaviour text runs alone through the layers below the split
    and is pooled to one vector; the layers from the split up read the user's
    profile tokens followed by those vectors, newest first (``docs/bahe.md``).
    """

    model_config = ConfigDict(extra="forbid")

    split_layer: int = Field(
        -2,
        description="First layer that reads the user's sequence; the layers below it encode "
        "each behaviour alone. Negative values count from the top (-2: the top two layers). "
        "It may not lie below the LoRA-adapted layers, so that a behaviour vector depends "
        "on the base backbone only.",
    )
    behaviour_pooling: Pooling = Field(
        "auto", description="How a behaviour's token states become one vector; auto: as pooling."
    )
    behaviour_max_length: int = Field(
        32, ge=4, description="Tokens kept of one behaviour text (a title and a rating)."
    )


class TrainConfig(BaseModel):
    """The optimisation recipe: the same one trains MARC and the proj-final baseline."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    epochs: int = Field(4, ge=1)
    users_per_step: int = Field(32, ge=1, description="Users whose texts one step encodes.")
    pairs_per_user: int = Field(
        8, ge=1, description="Training pairs sampled per user and step (all if fewer)."
    )
    learning_rate: float = Field(1e-3, gt=0.0, description="Heads and matching network.")
    backbone_learning_rate: float = Field(2e-4, gt=0.0, description="LoRA adapters.")
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_fraction: float = Field(0.06, ge=0.0, lt=1.0)
    grad_clip: float = Field(1.0, gt=0.0)
    patience: int = Field(2, ge=1, description="Epochs without a better validation AUC.")
    downstream_holdout: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="Each user's latest fraction of training interactions that the encoder "
        "never trains on: the downstream CTR model learns from them, so z cannot carry their "
        "labels into its features. 0 trains the encoder on every training interaction.",
    )
    user_max_length: int = Field(
        128, ge=8, description="Tokens kept of a user text (the newest behaviours come first)."
    )
    item_max_length: int = Field(64, ge=8)
    encode_batch_tokens: int = Field(16_384, ge=64, description="Padded tokens per forward.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    compatible_with: str | None = Field(
        None,
        description="A registered version to stay compatible with (backward-compatible "
        "training): each text's z is also pulled towards that version's z of the same text, "
        "so ranking models trained on its snapshots can keep reading the new ones.",
    )
    compatibility_weight: float = Field(
        1.0, ge=0.0, description="Weight of the pull towards compatible_with's z (1 - cosine)."
    )


class ModelConfig(BaseModel):
    """Which encoder produces embeddings, how MARC is built and where versions live."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = Field(
        "minilm",
        description="A local Hugging Face directory, or 'minilm' for the bundled all-MiniLM-L6-v2.",
    )
    k: int = Field(64, ge=2, le=4096, description="Dimension of the published embeddings.")
    registry: str = Field("models", description="Directory of registered model versions.")
    pooling: Pooling = Field(
        "auto", description="auto: mean for encoders, last non-padding token for decoders."
    )
    layer: int = Field(
        -1, description="Hidden state that feeds the compression net; -1 is the final layer."
    )
    head: Literal["mlp", "linear"] = Field(
        "mlp", description="Compression net g; 'linear' is the proj-final baseline's head."
    )
    head_hidden: int = Field(256, ge=1)
    shared_head: bool = Field(False, description="One compression net for users and items.")
    matching: Literal["dcn", "dot"] = Field(
        "dcn", description="Task adaptation net t; 'dot' scores z_u . z_i directly (proj-final)."
    )
    cross_layers: int = Field(2, ge=0, description="DCN-V2 cross layers of the matching net.")
    matching_hidden: list[int] = Field(default_factory=lambda: [256, 128])
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    estimator: Estimator = Field("infonce", description="Information constraint I(h; z).")
    lambda_info: float = Field(0.1, ge=0.0)
    lambda_dec: float = Field(
        0.0, ge=0.0, description="Weight of the HSIC penalty between z and t's hidden layer."
    )
    info_temperature: float = Field(0.1, gt=0.0, description="InfoNCE critic temperature.")
    info_detach_h: bool = Field(
        True,
        description="The constraint shapes g only: h is a target, so the backbone cannot "
        "lower the constraint by making h easier to predict.",
    )
    user_encoder: Literal["text", "bahe"] = Field(
        "text",
        description="text: a user is one text through every layer; bahe: behaviours are "
        "encoded once each by the lower layers and users by the upper layers only "
        "(the store keeps behaviour vectors per model; docs/bahe.md).",
    )
    bahe: BaheConfig = Field(default_factory=BaheConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


class LiftConfig(BaseModel):
    """The ranking team's view: an id-based DCN-V2 CTR model with and without z as features."""

    model_config = ConfigDict(extra="forbid")

    user_features: list[str] = Field(
        default_factory=lambda: ["age", "gender", "occupation"],
        description="Categorical user columns beside the user id.",
    )
    item_features: list[str] = Field(
        default_factory=lambda: ["year", "genres"],
        description="Categorical item columns beside the item id.",
    )
    multi_valued: dict[str, str] = Field(
        default_factory=lambda: {"genres": ","},
        description="Columns holding several values, and the separator between them.",
    )
    protocols: list[Literal["standard", "leak-free"]] = Field(
        default_factory=lambda: ["standard", "leak-free"],
        min_length=1,
        description="Which downstream training data the lift table reports: every training "
        "row, and/or only the rows the encoder never saw (needs a downstream_holdout).",
    )
    embedding_dim: int = Field(16, ge=1, description="Embedding width of every sparse field.")
    cross_layers: int = Field(2, ge=0, description="Full-rank DCN-V2 cross layers.")
    hidden: list[int] = Field(default_factory=lambda: [256, 128])
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-5, ge=0.0)
    batch_size: int = Field(1024, ge=1)
    epochs: int = Field(20, ge=1)
    patience: int = Field(2, ge=1, description="Epochs without a better validation AUC.")
    promotion_margin: float = Field(
        1.0,
        ge=0.0,
        description="A new version becomes current only if its validation AUC with z beats "
        "the current version's by more than this many seed standard deviations.",
    )


class CompatibilityConfig(BaseModel):
    """When a model change may reach a channel ranking teams read (docs/store.md)."""

    model_config = ConfigDict(extra="forbid")

    protected_channels: list[str] = Field(
        default_factory=lambda: ["prod"],
        description="Channels that take a snapshot of another model version only if the "
        "ranking team's CTR model, trained on the previous vectors, keeps its lift on the new "
        "ones mapped into the previous space.",
    )
    min_kept_lift: float = Field(
        0.95,
        ge=0.0,
        le=1.0,
        description="Fraction of the CTR model's validation lift over the id model it must "
        "keep on the mapped vectors.",
    )


class EvaluateConfig(BaseModel):
    """The downstream view: one CTR model, identical for every method, on frozen z."""

    model_config = ConfigDict(extra="forbid")

    lift: LiftConfig = Field(default_factory=LiftConfig)
    compatibility: CompatibilityConfig = Field(default_factory=CompatibilityConfig)

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    hidden: list[int] = Field(default_factory=lambda: [128, 64])
    epochs: int = Field(10, ge=1)
    patience: int = Field(2, ge=1, description="Epochs without a better validation AUC.")
    batch_size: int = Field(1024, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
