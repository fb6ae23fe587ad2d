"""The evaluation report: ``report.json`` (schema published), ``report.md`` and PNG plots.

A ``lift_only`` evaluation has no frozen-z table and no probe; those
sections (and their plots) are left out rather than filled with zeros.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from pydantic import BaseModel, Field

from marc_batch.evaluate.lift_report import LiftProtocol, MethodSummary, lift_markdown, plot_lift

METHOD_ORDER = ("pca-final", "pca-best-mid", "proj-final", "marc-no-info", "marc")


class LayerScore(BaseModel):
    layer: int
    auc_mean: float
    auc_std: float
    valid_auc_mean: float
    adapted: bool


class TrainingSummary(BaseModel):
    valid_auc: float
    best_epoch: int
    seconds: float


class EvaluationReport(BaseModel):
    """Test AUC/LogLoss of every method over seeds, its lift in an id-based CTR model under
    each protocol, and the per-layer probe of each backbone.

    Layers are hidden-state indices: 0 is the embedding output, i the output of
    transformer layer i; ``adapted_from_layer`` is the first index that LoRA changes.
    """

    command: str
    dataset: str
    backbone: str
    k: int
    model_version: str
    seeds: list[int]
    adapted_from_layer: int
    best_mid_layer: int
    best_mid_layer_chosen_by: str
    downstream_holdout: float = Field(
        description="Each user's latest fraction of training rows the encoder was kept from "
        "(per the evaluated config); the leak-free protocol trains the CTR model on them."
    )
    methods: dict[str, MethodSummary]
    lift: dict[str, LiftProtocol]
    probe: dict[str, list[LayerScore]]
    training: dict[str, TrainingSummary]
    seconds: float


def _methods_table(report: EvaluationReport) -> list[str]:
    lines = [
        "| method | test AUC (mean ± std) | test LogLoss (mean ± std) | valid AUC |",
        "|---|---|---|---|",
    ]
    for name in (n for n in METHOD_ORDER if n in report.methods):
        m = report.methods[name]
        lines.append(
            f"| `{name}` | {m.auc_mean:.4f} ± {m.auc_std:.4f} | "
            f"{m.logloss_mean:.4f} ± {m.logloss_std:.4f} | {m.valid_auc_mean:.4f} |"
        )
    return lines


def _probe_table(report: EvaluationReport) -> list[str]:
    names = list(report.probe)
    lines = [
        "| layer | " + " | ".join(f"{name} test AUC" for name in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for layer in range(len(report.probe[names[0]])):
        cells = []
        for name in names:
            score = report.probe[name][layer]
            mark = "*" if score.adapted else ""
            cells.append(f"{score.auc_mean:.4f} ± {score.auc_std:.4f}{mark}")
        label = "embeddings" if layer == 0 else str(layer)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(report: EvaluationReport) -> str:
    lines = [
        f"# Evaluation: {report.dataset}, {report.backbone}, k = {report.k}",
        "",
        f"Command: `{report.command}`",
        "",
        f"MARC version `{report.model_version}`; downstream CTR seeds {report.seeds}; "
        f"hidden states from layer {report.adapted_from_layer} up are LoRA-adapted in the "
        "tuned backbones; "
        f"total {report.seconds / 60:.1f} min.",
        "",
        "## Lift: z as dense features of an id-based DCN-V2 CTR model",
        "",
        "Seeds are paired with the baseline's; RelaImpr = (AUC - 0.5) / (AUC_base - 0.5) - 1. "
        + (
            f"The leak-free protocol trains the CTR model on each user's latest "
            f"{report.downstream_holdout:.0%} of training rows, which the encoder never saw."
            if report.downstream_holdout > 0
            else "The encoder was trained on every training row (no leak-free protocol)."
        ),
        "",
        *lift_markdown(report.lift, METHOD_ORDER),
        f"`pca-best-mid` uses layer {report.best_mid_layer}, chosen on "
        f"{report.best_mid_layer_chosen_by}.",
        "",
    ]
    if report.methods:
        lines += [
            "## Methods (test split, downstream CTR model on frozen k-dim embeddings alone)",
            "",
            *_methods_table(report),
            "",
        ]
    if report.probe:
        lines += [
            "## Layer probe (PCA to k of each layer's pooled state, test AUC)",
            "",
            "`*` marks adapted layers; the layers below them are the frozen backbone's.",
            "",
            *_probe_table(report),
            "",
        ]
    lines += [
        "## Training runs",
        "",
        "| model | best valid AUC (own scorer) | best epoch | seconds |",
        "|---|---|---|---|",
        *(
            f"| `{name}` | {t.valid_auc:.4f} | {t.best_epoch} | {t.seconds:.0f} |"
            for name, t in report.training.items()
        ),
        "",
    ]
    return "\n".join(lines)


def plot_probe(report: EvaluationReport, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, scores in report.probe.items():
        layers = [s.layer for s in scores]
        axes.errorbar(
            layers, [s.auc_mean for s in scores], yerr=[s.auc_std for s in scores],
            marker="o", capsize=3, label=name,
        )  # fmt: skip
    axes.axvline(report.adapted_from_layer - 0.5, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("layer (0 = embeddings)")
    axes.set_ylabel("test AUC (PCA to k, downstream CTR)")
    axes.set_title(f"AUC per layer, k = {report.k}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_methods(report: EvaluationReport, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    names = [name for name in METHOD_ORDER if name in report.methods]
    means = [report.methods[n].auc_mean for n in names]
    axes.bar(names, means, yerr=[report.methods[n].auc_std for n in names], capsize=4)
    low = min(means) - 0.02
    axes.set_ylim(low, max(means) + 0.01)
    axes.set_ylabel("test AUC (mean ± std over seeds)")
    axes.set_title(f"AUC per method, k = {report.k}")
    figure.autofmt_xdate(rotation=20)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(report: EvaluationReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md", out / "lift.png"]
    paths[0].write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(render_markdown(report), encoding="utf-8")
    plot_lift(report.lift, METHOD_ORDER, report.k, paths[2])
    if report.probe:
        paths.append(out / "auc_per_layer.png")
        plot_probe(report, paths[-1])
    if report.methods:
        paths.append(out / "auc_per_method.png")
        plot_methods(report, paths[-1])
    return paths
