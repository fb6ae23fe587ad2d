"""Hyper-parameter rounds for MARC at k = 64 on MovieLens-100K, chosen on validation only.

Each run trains MARC with one change to ``benchmarks/configs/ml100k-minilm-k64.toml``
(on top of its round's ``base``), through the same recipe as ``marc-batch train``
(``prepare`` + ``train_variant``), then scores its z on the *validation* split only
(seeds 0, 1, 2); the test split is never scored here. Two rounds:

- ``standalone`` (``experiments/results/hparams-k64/``): the config as it stood before
  that round (3 epochs), scored by the evaluation's standalone CTR model on z alone;
- ``lift`` (``experiments/results/hparams-k64-lift/``): the config as it is (10 epochs,
  the leak-free recipe), scored by the number promotion reads: the validation AUC of the
  id-based DCN-V2 with z as features, under the leak-free protocol, against the same
  model without z (the lift).

    nice -n 10 .venv/bin/python -m experiments.hparams --round lift --run hsic
    nice -n 10 .venv/bin/python -m experiments.hparams --round lift --run hsic --seed 1
    .venv/bin/python -m experiments.hparams --round lift --table   # runs.json as Markdown

``--seed N`` (N > 0) trains with ``train.seed = N`` and names the run ``<name>-seedN``:
training seeds move the result more than most settings do, so a setting is only read
against its own seeds. Results are merged into the round's runs.json after every run, so
a round can be run piecewise, also by several processes at once (``--threads 1`` and
their own ``--work`` each). Nothing is registered; ingestion writes under ``--work``
(default /tmp/hp).
"""

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import command, shell_word
from marc_batch.config import Config, ModelConfig, load_config
from marc_batch.evaluate.ctr import validation_auc
from marc_batch.evaluate.features import side_features
from marc_batch.evaluate.lift import gate_pairs, validation_lift_auc
from marc_batch.evaluate.protocol import Embeddings, encoder_states
from marc_batch.train.recipe import Prepared, prepare, train_variant

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "benchmarks/configs/ml100k-minilm-k64.toml"

# The standalone round's grid: changes to [model] (dotted paths below it, on top of its
# base, the config before that round: 3 epochs), in the order they are run.
STANDALONE: dict[str, dict[str, object]] = {
    "baseline": {},
    "lambda-0.03": {"lambda_info": 0.03},
    "lambda-0.3": {"lambda_info": 0.3},
    "hsic": {"estimator": "hsic"},
    "reconstruction": {"estimator": "reconstruction"},
    "backbone-lr-5e-4": {"train.backbone_learning_rate": 5e-4},
    "lora-layers-2": {"lora.layers": 2},
    "pairs-32": {"train.pairs_per_user": 32},
    "pairs-64": {"train.pairs_per_user": 64},
    "epochs-6": {"train.epochs": 6},
    "epochs-10": {"train.epochs": 10},
    "epochs-10-lambda-0.03": {"train.epochs": 10, "lambda_info": 0.03},
}

# The lift round's grid, on top of the config as it is (10 epochs, lambda_info 0.1, InfoNCE).
LIFT: dict[str, dict[str, object]] = {
    "baseline": {},
    "lambda-0.03": {"lambda_info": 0.03},
    "lambda-0.01": {"lambda_info": 0.01},
    "no-info": {"lambda_info": 0.0},
    "hsic": {"estimator": "hsic"},
    "reconstruction": {"estimator": "reconstruction"},
    "epochs-20-patience-5": {"train.epochs": 20, "train.patience": 5},
}


@dataclass(frozen=True)
class Round:
    base: dict[str, object]
    grid: dict[str, dict[str, object]]
    out: str


ROUNDS = {
    "standalone": Round({"train.epochs": 3}, STANDALONE, "experiments/results/hparams-k64"),
    "lift": Round({}, LIFT, "experiments/results/hparams-k64-lift"),
}


def env_name(path: str) -> str:
    return "MARC_BATCH_MODEL__" + path.replace(".", "__").upper()


def with_changes(model: ModelConfig, changes: dict[str, object]) -> ModelConfig:
    """``model`` with dotted-path fields replaced, validated like a config file."""
    data = model.model_dump()
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return ModelConfig.model_validate(data)


def commands(
    round_name: str, grid_name: str, seed: int, changes: dict[str, object], work: Path
) -> dict[str, str]:
    """The grid command of one run, and the ``marc-batch train`` it amounts to."""
    base = ROUNDS[round_name].base
    name = f"{grid_name}-seed{seed}" if seed else grid_name
    env = " ".join(f"{env_name(path)}={value}" for path, value in {**base, **changes}.items())
    argv = ["--round", round_name, "--run", grid_name, "--work", str(work)]
    grid = command("experiments.hparams", argv + (["--seed", str(seed)] if seed else []))
    where = shell_word(str(work))
    paths = f"MARC_BATCH_MODEL__REGISTRY={where}/{name}/models MARC_BATCH_STORE__ROOT={where}/store"
    return {
        "grid": grid,
        "train_equivalent": f"{env} {paths}".strip()
        + f" marc-batch train --config {CONFIG} --json",
    }


def standalone_scores(config: Config, prepared: Prepared, z: Embeddings) -> dict:
    """The standalone CTR model's validation AUC on z alone, per seed."""
    aucs = [
        validation_auc(z["user"], z["item"], prepared.pairs, config.evaluate, seed)
        for seed in config.evaluate.seeds
    ]
    return {"downstream_valid_auc": aucs}


def lift_scores(config: Config, prepared: Prepared, z: Embeddings) -> dict:
    """Validation AUC per seed of the id-based CTR model with z and without (the gate's data)."""
    lift, seeds = config.evaluate.lift, config.evaluate.seeds
    protocol, pairs = gate_pairs(prepared.pairs, config.model.train.downstream_holdout)
    fields = side_features(prepared.catalogue, lift)
    baseline = validation_lift_auc(fields, None, pairs, lift, seeds)
    aucs = validation_lift_auc(fields, z, pairs, lift, seeds)
    return {
        "protocol": protocol,
        "downstream_valid_auc": aucs,
        "baseline_valid_auc": baseline,
        "valid_lift": float(np.mean(aucs) - np.mean(baseline)),
    }


def run_one(
    round_name: str,
    grid_name: str,
    seed: int,
    changes: dict[str, object],
    config: Config,
    prepared: Prepared,
    work: Path,
) -> dict:
    name = f"{grid_name}-seed{seed}" if seed else grid_name
    model = with_changes(config.model, {**changes, "registry": str(work / name / "models")})
    encoder, _, result = train_variant(prepared, model)
    started = time.perf_counter()
    _, z = encoder_states(encoder, prepared.caches, model.train.encode_batch_tokens)
    score = lift_scores if round_name == "lift" else standalone_scores
    scores = score(config, prepared, z)
    downstream = scores["downstream_valid_auc"]
    return {
        "name": name,
        "changes": changes,
        "commands": commands(round_name, grid_name, seed, changes, work),
        "best_valid_auc": result.best_valid_auc,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 1),
        "history": result.history,
        **scores,
        "downstream_valid_auc_mean": float(np.mean(downstream)),
        "downstream_valid_auc_std": float(np.std(downstream)),
        "downstream_seeds": config.evaluate.seeds,
        "scoring_seconds": round(time.perf_counter() - started, 1),
    }


def table(runs: list[dict]) -> str:
    """The runs as a Markdown table (validation numbers only; the lift where it was scored)."""
    lift = all("valid_lift" in run for run in runs)
    rows = [
        "| run | change | t valid AUC per epoch | best (epoch) | downstream valid AUC "
        f"(mean ± std, 3 seeds) |{' lift over the id model |' if lift else ''} train s |",
        f"|---|---|---|---|---|{'---|' if lift else ''}---|",
    ]
    for run in runs:
        change = ", ".join(f"`{k} = {v}`" for k, v in run["changes"].items()) or "none"
        epochs = " / ".join(f"{h['valid_auc']:.4f}" for h in run["history"])
        rows.append(
            f"| `{run['name']}` | {change} | {epochs} | {run['best_valid_auc']:.4f} "
            f"({run['best_epoch']}) | {run['downstream_valid_auc_mean']:.4f} ± "
            f"{run['downstream_valid_auc_std']:.4f} |"
            + (f" +{run['valid_lift']:.4f} |" if lift else "")
            + f" {run['train_seconds']:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round", choices=sorted(ROUNDS), default="standalone")
    parser.add_argument("--run", action="append", help="a name in the round's grid; default: all")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hp"))
    parser.add_argument("--seed", type=int, default=0, help="training seed (train.seed)")
    parser.add_argument("--threads", type=int, help="torch CPU threads; default: all cores")
    parser.add_argument("--table", action="store_true", help="print runs.json as Markdown")
    args = parser.parse_args()
    chosen = ROUNDS[args.round]
    path = ROOT / chosen.out / "runs.json"
    if args.table:
        print(table(json.loads(path.read_text())["runs"]))
        return
    unknown = sorted(set(args.run or []) - set(chosen.grid))
    if unknown:
        parser.error(f"not in the {args.round} grid: {', '.join(unknown)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    os.chdir(ROOT)
    config = load_config(CONFIG)
    config = config.model_copy(
        update={
            "model": with_changes(config.model, chosen.base),
            "store": config.store.model_copy(update={"root": str(args.work / "store")}),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    prepared_by_layers: dict[int, tuple[Prepared, float]] = {}
    for grid_name in args.run or list(chosen.grid):
        name, changes = grid_name, chosen.grid[grid_name]
        if args.seed:
            name, changes = f"{grid_name}-seed{args.seed}", {**changes, "train.seed": args.seed}
        model = with_changes(config.model, changes)
        layers = model.lora.layers
        if layers not in prepared_by_layers:
            started = time.perf_counter()
            layer_config = config.model_copy(update={"model": model})
            prepared_by_layers[layers] = (prepare(layer_config), time.perf_counter() - started)
        prepared, prepare_seconds = prepared_by_layers[layers]
        entry = run_one(args.round, grid_name, args.seed, changes, config, prepared, args.work)
        entry["prepare_seconds"] = round(prepare_seconds, 1)
        entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        # Read late: another process may have added runs since this one started.
        saved = json.loads(path.read_text()) if path.is_file() else {"runs": []}
        saved["runs"] = [r for r in saved["runs"] if r["name"] != name] + [entry]
        saved.update(
            base_config=CONFIG,
            base_changes=chosen.base,
            selection="validation only: the test split is never scored by this script",
            machine=f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"cuda {torch.cuda.is_available()}",
        )
        path.write_text(json.dumps(saved, indent=2) + "\n")
        print(
            f"{name}: t valid AUC {entry['best_valid_auc']:.4f} (epoch {entry['best_epoch']}), "
            f"downstream valid AUC {entry['downstream_valid_auc_mean']:.4f}, "
            f"{entry['train_seconds']:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
