"""A model change as a ranking team meets it: refresh, retrain, refresh, promote to ``prod``.

Usage: python -m benchmarks.compatibility --config benchmarks/configs/ml100k-minilm-k64.toml \\
           --previous models-k64/<version> --new models-k64-seed1/<version> \\
           --out benchmarks/results/compatibility/ml100k-minilm-k64.json

Two registered versions of one recipe (trained with different seeds) are
copied into one scratch registry. A refresh with the previous version is
published to ``prod``; a refresh with the new version then fits the
alignment map to the previous snapshot's space and records how the ranking
team's CTR model, trained on the previous vectors, scores the new ones
mapped and unmapped (:mod:`marc_batch.evaluate.compatibility`); finally the
new snapshot is promoted to ``prod`` through the gate. The figures are the
manifest's own record, the gate's verdict and the wall time of each step.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import command, machine, save
from marc_batch.config import load_config
from marc_batch.errors import IncompatibleModel
from marc_batch.pipeline.publish import publish
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store
from marc_batch.store.attachments import read_statistics

MODULE = "benchmarks.compatibility"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--previous", type=Path, required=True, help="A registered version dir.")
    parser.add_argument("--new", type=Path, required=True, help="A registered version dir.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="marc-batch-compat-") as scratch:
        registry = Path(scratch) / "models"
        for version in (args.previous, args.new):
            shutil.copytree(version, registry / version.name)
        config = load_config(args.config)
        config = config.model_copy(
            update={
                "model": config.model.model_copy(update={"registry": str(registry)}),
                "store": config.store.model_copy(update={"root": str(Path(scratch) / "store")}),
            }
        )
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        refresh(config, model_version=args.previous.name, channel="prod")
        seconds["refresh_previous"] = time.perf_counter() - started
        started = time.perf_counter()
        report = refresh(config, model_version=args.new.name, channel="latest")
        seconds["refresh_new_with_check"] = time.perf_counter() - started
        store = Store(config.store)
        manifest = store.manifest(report.version)
        protected = config.evaluate.compatibility.protected_channels
        try:
            publish(store, report.version, "prod", protected=protected)
            gate = "published"
        except IncompatibleModel as refused:
            gate = f"refused: {refused}"
        statistics = read_statistics(store, manifest) or {}
    record = manifest.compatibility
    save(
        args.out,
        {
            "command": command(MODULE),
            "machine": machine(),
            "previous_model": args.previous.name,
            "new_model": args.new.name,
            "compatibility": record.model_dump() if record else None,
            "alignment": statistics.get("alignment"),
            "gate": gate,
            "seconds": {name: round(value, 1) for name, value in seconds.items()},
        },
    )


if __name__ == "__main__":
    main()
