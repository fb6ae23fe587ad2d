"""A small hyper-parameter grid for MARC at k = 64 on MovieLens-100K, chosen on validation only.

Each run trains MARC with one change to ``benchmarks/configs/ml100k-minilm-k64.toml`` as it
was before this round (``BASE``), through the same recipe as ``marc-batch train``
(``prepare`` + ``train_variant``), then scores its published z with the evaluation's
downstream CTR model on the *validation* split only (seeds 0, 1, 2); the test split is
never scored here. The frozen pass is shared by every run that adapts the same number
of layers.

    nice -n 10 .venv/bin/python -m experiments.hparams               # the whole grid
    nice -n 10 .venv/bin/python -m experiments.hparams --run hsic    # one run
    nice -n 10 .venv/bin/python -m experiments.hparams --run hsic --seed 1 --threads 1
    .venv/bin/python -m experiments.hparams --table                  # runs.json as Markdown

``--seed N`` (N > 0) trains with ``train.seed = N`` and names the run ``<name>-seedN``:
training seeds move the result more than most settings do, so a setting is only read
against its own seeds. Results are merged into ``--out``/runs.json after every run, so
the grid can be run piecewise, also by several processes at once (``--threads 1`` and
their own ``--work`` each). Nothing is registered; ingestion writes under ``--work``
(default /tmp/hp).
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from marc_batch.config import Config, ModelConfig, load_config
from marc_batch.evaluate.ctr import validation_auc
from marc_batch.evaluate.protocol import encoder_states
from marc_batch.train.recipe import Prepared, prepare, train_variant

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "benchmarks/configs/ml100k-minilm-k64.toml"

# Where this round started: the k = 64 config as it stood before it (3 epochs). The
# config now trains 10 epochs, the setting this round chose.
BASE: dict[str, object] = {"train.epochs": 3}

# name -> changes to [model] (dotted paths below it, on top of BASE), in the order they are run.
GRID: dict[str, dict[str, object]] = {
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


def commands(name: str, changes: dict[str, object], work: Path) -> dict[str, str]:
    env = " ".join(f"{env_name(path)}={value}" for path, value in {**BASE, **changes}.items())
    paths = f"MARC_BATCH_MODEL__REGISTRY={work}/{name}/models MARC_BATCH_STORE__ROOT={work}/store"
    train = f"{env} {paths}".strip()
    return {
        "grid": f"nice -n 10 .venv/bin/python -m experiments.hparams --run {name}",
        "train_equivalent": f"{train} marc-batch train --config {CONFIG} --json",
    }


def run_one(
    name: str, changes: dict[str, object], config: Config, prepared: Prepared, work: Path
) -> dict:
    model = with_changes(config.model, {**changes, "registry": str(work / name / "models")})
    encoder, _, result = train_variant(prepared, model)
    started = time.perf_counter()
    _, z = encoder_states(encoder, prepared.caches, model.train.encode_batch_tokens)
    downstream = [
        validation_auc(z["user"], z["item"], prepared.pairs, config.evaluate, seed)
        for seed in config.evaluate.seeds
    ]
    return {
        "name": name,
        "changes": changes,
        "commands": commands(name, changes, work),
        "best_valid_auc": result.best_valid_auc,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 1),
        "history": result.history,
        "downstream_valid_auc": downstream,
        "downstream_valid_auc_mean": float(np.mean(downstream)),
        "downstream_valid_auc_std": float(np.std(downstream)),
        "downstream_seeds": config.evaluate.seeds,
        "scoring_seconds": round(time.perf_counter() - started, 1),
    }


def table(runs: list[dict]) -> str:
    """The runs as a Markdown table (validation numbers only)."""
    rows = [
        "| run | change | t valid AUC per epoch | best (epoch) | downstream valid AUC "
        "(mean ± std, 3 seeds) | train s |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        change = ", ".join(f"`{k} = {v}`" for k, v in run["changes"].items()) or "none"
        epochs = " / ".join(f"{h['valid_auc']:.4f}" for h in run["history"])
        rows.append(
            f"| `{run['name']}` | {change} | {epochs} | {run['best_valid_auc']:.4f} "
            f"({run['best_epoch']}) | {run['downstream_valid_auc_mean']:.4f} ± "
            f"{run['downstream_valid_auc_std']:.4f} | {run['train_seconds']:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", choices=sorted(GRID), help="default: all")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/results/hparams-k64")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hp"))
    parser.add_argument("--seed", type=int, default=0, help="training seed (train.seed)")
    parser.add_argument("--threads", type=int, help="torch CPU threads; default: all cores")
    parser.add_argument("--table", action="store_true", help="print runs.json as Markdown")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads((args.out / "runs.json").read_text())["runs"]))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    os.chdir(ROOT)
    config = load_config(CONFIG)
    config = config.model_copy(
        update={
            "model": with_changes(config.model, BASE),
            "store": config.store.model_copy(update={"root": str(args.work / "store")}),
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "runs.json"
    prepared_by_layers: dict[int, tuple[Prepared, float]] = {}
    for grid_name in args.run or list(GRID):
        name, changes = grid_name, GRID[grid_name]
        if args.seed:
            name, changes = f"{grid_name}-seed{args.seed}", {**changes, "train.seed": args.seed}
        model = with_changes(config.model, changes)
        layers = model.lora.layers
        if layers not in prepared_by_layers:
            started = time.perf_counter()
            layer_config = config.model_copy(update={"model": model})
            prepared_by_layers[layers] = (prepare(layer_config), time.perf_counter() - started)
        prepared, prepare_seconds = prepared_by_layers[layers]
        entry = run_one(name, changes, config, prepared, args.work)
        entry["prepare_seconds"] = round(prepare_seconds, 1)
        entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        # Read late: another process may have added runs since this one started.
        saved = json.loads(path.read_text()) if path.is_file() else {"runs": []}
        saved["runs"] = [r for r in saved["runs"] if r["name"] != name] + [entry]
        saved.update(
            base_config=CONFIG,
            base_changes=BASE,
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
