"""The lift part of the evaluation report: its JSON models, its markdown table and its plot."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from pydantic import BaseModel

from marc_batch.evaluate.lift import LiftTable, paired_lift
from marc_batch.evaluate.protocol import MethodScore


class MethodSummary(BaseModel):
    auc_mean: float
    auc_std: float
    logloss_mean: float
    logloss_std: float
    valid_auc_mean: float
    test_auc: list[float]
    test_logloss: list[float]

    @classmethod
    def of(cls, score: MethodScore) -> "MethodSummary":
        return cls(**score.summary(), test_auc=score.test_auc, test_logloss=score.test_logloss)


class LiftSummary(MethodSummary):
    """A method's scores in the id model, and its paired gain over the id baseline."""

    auc_gain_mean: float
    auc_gain_std: float
    rela_impr_mean: float
    rela_impr_std: float


class LiftProtocol(BaseModel):
    """One protocol: how many rows the downstream model learned from, the baseline, the lifts."""

    train_rows: int
    baseline: MethodSummary
    methods: dict[str, LiftSummary]

    @classmethod
    def of(cls, table: LiftTable, train_rows: int) -> "LiftProtocol":
        return cls(
            train_rows=train_rows,
            baseline=MethodSummary.of(table.baseline),
            methods={
                name: LiftSummary(
                    **MethodSummary.of(score).model_dump(), **paired_lift(score, table.baseline)
                )
                for name, score in table.methods.items()
            },
        )


def lift_markdown(lift: dict[str, LiftProtocol], order: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for name, protocol in lift.items():
        base = protocol.baseline
        lines += [
            f"### Protocol `{name}` (downstream model trained on {protocol.train_rows} rows)",
            "",
            "| features | test AUC | test LogLoss | AUC gain | RelaImpr | valid AUC |",
            "|---|---|---|---|---|---|",
            f"| ids + side (baseline) | {base.auc_mean:.4f} ± {base.auc_std:.4f} | "
            f"{base.logloss_mean:.4f} ± {base.logloss_std:.4f} | - | - | "
            f"{base.valid_auc_mean:.4f} |",
        ]
        for method in (m for m in order if m in protocol.methods):
            s = protocol.methods[method]
            lines.append(
                f"| + `{method}` z | {s.auc_mean:.4f} ± {s.auc_std:.4f} | "
                f"{s.logloss_mean:.4f} ± {s.logloss_std:.4f} | "
                f"{s.auc_gain_mean:+.4f} ± {s.auc_gain_std:.4f} | "
                f"{s.rela_impr_mean:+.2f}% ± {s.rela_impr_std:.2f} | {s.valid_auc_mean:.4f} |"
            )
        lines.append("")
    return lines


def plot_lift(lift: dict[str, LiftProtocol], order: tuple[str, ...], k: int, path: Path) -> None:
    """AUC gain over the id baseline per method, one bar group per protocol."""
    figure, axes = plt.subplots(figsize=(7, 4))
    protocols = list(lift)
    methods = [m for m in order if any(m in lift[p].methods for p in protocols)]
    width = 0.8 / max(1, len(protocols))
    positions = np.arange(len(methods))
    for index, name in enumerate(protocols):
        rows = [lift[name].methods.get(m) for m in methods]
        axes.bar(
            positions + index * width,
            [r.auc_gain_mean if r else 0.0 for r in rows],
            width,
            yerr=[r.auc_gain_std if r else 0.0 for r in rows],
            capsize=3,
            label=f"{name} (baseline AUC {lift[name].baseline.auc_mean:.4f})",
        )
    axes.axhline(0.0, color="grey", linewidth=1)
    axes.set_xticks(positions + width * (len(protocols) - 1) / 2, methods, rotation=20)
    axes.set_ylabel("test AUC gain over ids + side features")
    axes.set_title(f"Lift of z in a DCN-V2 CTR model, k = {k}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
