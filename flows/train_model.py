"""Training: a new MARC version, judged against the current one before it replaces it.

The new version is always registered (it is content-addressed, so nothing
is overwritten) but becomes ``current`` only if its z lifts the id-based
CTR model more than the current version's z does, on validation, by more
than the seed spread (:mod:`marc_batch.evaluate.promotion`); the test split
is never used to decide. With no current version there is nothing to beat,
so the first one is promoted without that run. With ``compare_baselines``
the protocol of docs/marc.md scores it against the baselines and the report
lands next to the registry.
"""

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from pydantic import BaseModel

from flows.outcome import run_step
from flows.summaries import publish_summary
from marc_batch.config import Config
from marc_batch.evaluate.promotion import LiftGate, lift_gate
from marc_batch.evaluate.report import EvaluationReport, write_report
from marc_batch.evaluate.run import evaluate
from marc_batch.model.registry import Registry
from marc_batch.parameters import TrainParameters
from marc_batch.train.recipe import prepare
from marc_batch.train.register import TrainSummary, train_and_register
from marc_batch.train.trainer import progress_bar


class TrainOutcome(BaseModel):
    trained: TrainSummary
    promoted: bool
    current: str | None
    gate: LiftGate | None
    report_dir: str | None
    test_auc: dict[str, float]


@task(name="train", cache_policy=NO_CACHE)
def train(config: Config) -> TrainSummary:
    return train_and_register(config, make_current=False)


@task(name="lift-on-validation", cache_policy=NO_CACHE)
def judge(config: Config, candidate: str, current: str) -> LiftGate:
    with progress_bar() as progress:
        prepared = prepare(config, progress)
    return lift_gate(prepared, Registry(Path(config.model.registry)), candidate, current)


@task(name="evaluate-against-baselines", cache_policy=NO_CACHE)
def compare(config: Config, version: str, out: Path) -> EvaluationReport:
    with progress_bar() as progress:
        report = evaluate(config, version, f"train-model flow, model {version}", progress)
    write_report(report, out)
    return report


def _gate_rows(outcome: TrainOutcome) -> dict[str, object]:
    gate = outcome.gate
    if gate is None:
        return {"lift gate": "no current version: promoted without one"}
    return {
        "lift protocol": gate.protocol,
        "id baseline validation AUC": f"{gate.baseline:.4f}",
        "new version's validation AUC gain": f"{gate.candidate_lift:+.4f}",
        f"current version {outcome.current}'s validation AUC gain": f"{gate.current_lift:+.4f}",
        "required margin": f"{gate.margin:.4f}",
    }


def summarise(outcome: TrainOutcome) -> None:
    verdict = "now current" if outcome.promoted else "registered, not promoted"
    get_run_logger().info("model %s %s", outcome.trained.version, verdict)
    publish_summary(
        "train-model",
        f"Model {outcome.trained.version}: {verdict}",
        {
            "matching net's validation AUC": f"{outcome.trained.valid_auc:.4f}",
            **_gate_rows(outcome),
            "epochs": outcome.trained.epochs_run,
            "train seconds": outcome.trained.train_seconds,
            "report": outcome.report_dir,
            **{f"test AUC {name}": f"{auc:.4f}" for name, auc in outcome.test_auc.items()},
        },
        {},
        {},
    )


def train_and_judge(parameters: TrainParameters) -> TrainOutcome:
    """Train and register, score against the baselines if asked, promote on validation lift."""
    config = parameters.load()
    if parameters.epochs is not None:
        config.model.train.epochs = parameters.epochs
    registry = Registry(Path(config.model.registry))
    trained = train(config)
    report_dir, test_auc = None, {}
    if parameters.compare_baselines:
        out = parameters.report_dir or registry.root / "reports" / trained.version
        report = compare(config, trained.version, out)
        report_dir = str(out)
        test_auc = {name: method.auc_mean for name, method in report.methods.items()}
    current = registry.find_current()
    gate = None if current is None else judge(config, trained.version, current)
    promoted = gate is None or gate.promoted
    if promoted:
        registry.set_current(trained.version)
    return TrainOutcome(
        trained=trained,
        promoted=promoted,
        current=current,
        gate=gate,
        report_dir=report_dir,
        test_auc=test_auc,
    )


@flow(name="train-model", log_prints=False)
def train_model(parameters: TrainParameters | None = None) -> TrainOutcome | State:
    """Train, optionally evaluate against the baselines, promote only on a better lift."""
    parameters = parameters or TrainParameters()
    return run_step(lambda: train_and_judge(parameters), summarise)
