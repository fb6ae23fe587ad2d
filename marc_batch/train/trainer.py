"""The training recipe: one explicit loop for MARC and for the proj-final baseline.

A step samples ``users_per_step`` users and up to ``pairs_per_user`` of each
one's training pairs, runs every distinct user and item text of the step
once through the adapted top layers (from the frozen cache), and minimises
the objective. AdamW with warm-up plus cosine decay, gradient clipping,
early stopping on validation AUC, a checkpoint after every epoch (trainable
tensors and optimiser state as safetensors, counters as JSON) and resume.
"""

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from safetensors.torch import load_file, save_file
from sklearn.metrics import roc_auc_score
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from marc_batch.config import ModelConfig
from marc_batch.encode.batching import batches_of
from marc_batch.entities import Entity
from marc_batch.model.marc import MarcEncoder, MarcObjective
from marc_batch.train.cache import TextCache, tail_forward

if TYPE_CHECKING:  # building pairs needs ingestion (duckdb); training from them does not
    from marc_batch.train.pairs import Pairs


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """Sampling depends on (seed, epoch) only, so a resumed run samples what it would have."""
    return np.random.default_rng([seed, epoch])


def progress_bar() -> Progress:
    """On stderr, so that ``--json`` output on stdout stays one clean object."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


@dataclass
class TrainResult:
    best_valid_auc: float
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Owns the optimisation state of one run; ``fit`` leaves the best weights loaded."""

    def __init__(
        self,
        config: ModelConfig,
        encoder: MarcEncoder,
        objective: MarcObjective,
        caches: dict[Entity, TextCache],
        pairs: "Pairs",
        checkpoint_dir: Path | None = None,
        anchors: dict[Entity, torch.Tensor] | None = None,
    ) -> None:
        self.config = config
        self.train_config = config.train
        self.encoder = encoder
        self.objective = objective
        self.caches = caches
        self.pairs = pairs
        self.checkpoint_dir = checkpoint_dir
        self.device = next(encoder.parameters()).device
        # Backward-compatible training: z of each text row under ``train.compatible_with``.
        self.anchors = (
            {e: F.normalize(z.float(), dim=-1).to(self.device) for e, z in anchors.items()}
            if anchors
            else None
        )
        self.rng = epoch_rng(self.train_config.seed, 0)
        encoder.heads.fit_standardisation(
            {
                entity: torch.from_numpy(cache.pooled[:, encoder.layer]).to(self.device)
                for entity, cache in caches.items()
            }
        )
        train = pairs.splits["train"]
        order = np.argsort(train.users, kind="stable")
        bounds = np.flatnonzero(np.diff(train.users[order])) + 1
        self.user_pairs = dict(
            zip(np.unique(train.users[order]).tolist(), np.split(order, bounds), strict=True)
        )
        self.steps_per_epoch = math.ceil(len(self.user_pairs) / self.train_config.users_per_step)
        adapters = [p for p in encoder.backbone.parameters() if p.requires_grad]
        heads = [p for p in encoder.heads.parameters()] + list(objective.parameters())
        self.optimizer = torch.optim.AdamW(
            [
                {"params": adapters, "lr": self.train_config.backbone_learning_rate},
                {"params": heads, "lr": self.train_config.learning_rate},
            ],
            weight_decay=self.train_config.weight_decay,
        )
        total = self.steps_per_epoch * self.train_config.epochs
        self.scheduler = get_cosine_schedule_with_warmup(
            self.optimizer, int(self.train_config.warmup_fraction * total), total
        )

    def _trainable(self) -> dict[str, nn.Parameter]:
        named = {f"encoder.{n}": p for n, p in self.encoder.named_parameters() if p.requires_grad}
        named.update({f"objective.{n}": p for n, p in self.objective.named_parameters()})
        return named

    def _sample_step(self, users: np.ndarray) -> np.ndarray:
        """Pair indices of one step: up to ``pairs_per_user`` per user."""
        chosen = []
        for user in users:
            candidates = self.user_pairs[int(user)]
            take = min(len(candidates), self.train_config.pairs_per_user)
            chosen.append(self.rng.choice(candidates, size=take, replace=False))
        return np.concatenate(chosen)

    def _states(self, entity: Entity, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self.caches[entity]
        hidden, mask = tail_forward(self.encoder.backbone, cache, rows)
        h = self.encoder.state(hidden, mask, start=cache.start)
        return h, self.encoder.heads(h, entity)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"
        )

    def step(self, pair_index: np.ndarray) -> dict[str, float]:
        train = self.pairs.splits["train"]
        self.encoder.train()
        self.objective.train()
        states = {}
        distinct = {}
        for entity, rows in (("user", train.users[pair_index]), ("item", train.items[pair_index])):
            distinct[entity] = np.unique(rows, return_inverse=True)
            with self._autocast():
                states[entity] = self._states(entity, distinct[entity][0].tolist())
        inverse = {entity: positions for entity, (_, positions) in distinct.items()}
        labels = torch.from_numpy(train.labels[pair_index]).to(self.device)
        with self._autocast():
            terms = self.objective(
                states,
                torch.from_numpy(inverse["user"]).to(self.device),
                torch.from_numpy(inverse["item"]).to(self.device),
                labels,
            )
        total, figures = terms.total, {"bce": terms.bce.item(), "info": terms.info.item()}
        if self.anchors is not None:
            drift = self._drift(states, {e: d for e, (d, _) in distinct.items()})
            total = total + self.train_config.compatibility_weight * drift
            figures["compat"] = drift.item()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(list(self._trainable().values()), self.train_config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": total.item(), **figures}

    def _drift(self, states: dict, rows: dict[Entity, np.ndarray]) -> torch.Tensor:
        """Mean 1 - cosine between the batch's z and the compatible version's z of each text."""
        assert self.anchors is not None
        parts = [
            1.0 - F.cosine_similarity(z.float(), self.anchors[entity][rows[entity]], dim=-1)
            for entity, (_, z) in states.items()
        ]
        return torch.cat(parts).mean()

    @torch.no_grad()
    def embed_all(self, entity: Entity) -> torch.Tensor:
        """z of every text of ``entity`` with the current weights."""
        self.encoder.eval()
        cache = self.caches[entity]
        out = torch.zeros(len(cache), self.config.k, device=self.device)
        for batch in batches_of(
            [len(r) for r in cache.input_ids], self.train_config.encode_batch_tokens
        ):
            with self._autocast():
                out[batch] = self._states(entity, batch)[1].float()
        return out

    @torch.no_grad()
    def validate(self) -> float:
        """AUC of the matching net on the validation split: the model-selection signal."""
        self.objective.eval()
        valid = self.pairs.splits["valid"]
        z_u, z_i = self.embed_all("user"), self.embed_all("item")
        scores = self.objective.score(
            z_u[torch.from_numpy(valid.users).to(self.device)],
            z_i[torch.from_numpy(valid.items).to(self.device)],
        )
        return float(roc_auc_score(valid.labels, scores.float().cpu().numpy()))

    def _save(self, name: str, counters: dict) -> None:
        if self.checkpoint_dir is None:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tensors = {n: p.detach().cpu().contiguous() for n, p in self._trainable().items()}
        optimizer = self.optimizer.state_dict()
        for index, state in optimizer["state"].items():
            for key, value in state.items():
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
        save_file(tensors, str(self.checkpoint_dir / f"{name}.safetensors"))
        counters = {**counters, "param_groups": optimizer["param_groups"]}
        (self.checkpoint_dir / f"{name}.json").write_text(json.dumps(counters), encoding="utf-8")

    def _load(self, name: str) -> dict:
        assert self.checkpoint_dir is not None
        tensors = load_file(str(self.checkpoint_dir / f"{name}.safetensors"))
        counters = json.loads((self.checkpoint_dir / f"{name}.json").read_text(encoding="utf-8"))
        with torch.no_grad():
            for n, p in self._trainable().items():
                p.copy_(tensors[n].to(p.device))
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, field_name = key.split(".", 2)
                state.setdefault(int(index), {})[field_name] = value.to(self.device)
        self.optimizer.load_state_dict({"state": state, "param_groups": counters["param_groups"]})
        return counters

    def fit(self, resume: bool = False) -> TrainResult:
        started = time.perf_counter()
        counters = {"epoch": 0, "best_auc": -1.0, "best_epoch": -1, "history": []}
        if resume and self.checkpoint_dir and (self.checkpoint_dir / "last.json").is_file():
            counters = self._load("last")
            for _ in range(counters["epoch"] * self.steps_per_epoch):
                self.scheduler.step()
        best_state = {n: p.detach().clone() for n, p in self._trainable().items()}
        if counters["best_epoch"] > 0 and self.checkpoint_dir is not None:
            best_state = load_file(str(self.checkpoint_dir / "best.safetensors"))
        users = np.array(sorted(self.user_pairs))
        with progress_bar() as progress:
            task = progress.add_task(
                "training", total=self.steps_per_epoch * self.train_config.epochs
            )
            progress.advance(task, counters["epoch"] * self.steps_per_epoch)
            for epoch in range(counters["epoch"], self.train_config.epochs):
                self.rng = epoch_rng(self.train_config.seed, epoch)
                order = self.rng.permutation(users)
                losses = []
                for start in range(0, len(order), self.train_config.users_per_step):
                    chunk = order[start : start + self.train_config.users_per_step]
                    losses.append(self.step(self._sample_step(chunk)))
                    progress.update(
                        task,
                        advance=1,
                        description=f"training: epoch {epoch + 1} loss {losses[-1]['loss']:.4f} "
                        f"best valid AUC {max(counters['best_auc'], 0):.4f}",
                    )
                auc = self.validate()
                mean = {key: float(np.mean([x[key] for x in losses])) for key in losses[0]}
                counters["history"].append({"epoch": epoch + 1, "valid_auc": auc, **mean})
                if auc > counters["best_auc"]:
                    counters.update(best_auc=auc, best_epoch=epoch + 1)
                    best_state = {n: p.detach().clone() for n, p in self._trainable().items()}
                    self._save("best", counters)
                counters["epoch"] = epoch + 1
                self._save("last", counters)
                progress.update(
                    task, description=f"training: epoch {epoch + 1} valid AUC {auc:.4f}"
                )
                if epoch + 1 - counters["best_epoch"] >= self.train_config.patience:
                    break
        with torch.no_grad():
            for n, p in self._trainable().items():
                p.copy_(best_state[n].to(p.device))
        return TrainResult(
            best_valid_auc=counters["best_auc"],
            best_epoch=counters["best_epoch"],
            epochs_run=counters["epoch"],
            seconds=time.perf_counter() - started,
            history=counters["history"],
        )
