"""Flow-run summaries as Prefect artifacts: what a run read, wrote, skipped and proved."""

from prefect.artifacts import create_markdown_artifact

from marc_batch.evaluate.compatibility import INPUTS
from marc_batch.index import IndexReport
from marc_batch.store.manifest import CompatibilityRecord
from marc_batch.store.statistics import summary_lines


def _encode_rows(encode: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| entity | texts | texts/s | tokens/s | padding | OOM retries |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {entity} | {s['texts']:.0f} | {s['texts_per_second']:.1f} | "
        f"{s['tokens_per_second']:.0f} | {s['padding_ratio']:.1%} | {s['oom_retries']:.0f} |"
        for entity, s in encode.items()
    ]
    return lines


def _index_rows(indexes: dict[str, IndexReport]) -> list[str]:
    lines = [
        "| index | type | rows | recall | target | nprobe | build s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {entity} | `{r.factory}` | {r.rows} | {r.recall:.4f} | {r.recall_target} | "
        f"{r.nprobe or '-'} | {r.build_seconds:.2f} |"
        for entity, r in indexes.items()
    ]
    return lines


def compatibility_rows(record: CompatibilityRecord) -> list[str]:
    figures = record.figures

    def cell(value: object, form: str) -> str:
        return format(value, form) if isinstance(value, float) else "-"

    lines = [
        f"Compatibility with version {record.previous_version} (model "
        f"`{record.previous_model}`): the CTR model trained on its vectors, "
        f"{'compatible' if figures.get('compatible') else 'NOT compatible'} "
        f"(needs {cell(figures.get('min_kept_lift'), '.0%')} of the lift on validation).",
        "",
        "| input | valid AUC | test AUC | lift kept (valid) | lift kept (test) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("id-baseline", *INPUTS):
        lines.append(
            f"| {name} | {cell(figures.get(f'valid_auc_{name}'), '.4f')} | "
            f"{cell(figures.get(f'test_auc_{name}'), '.4f')} | "
            f"{cell(figures.get(f'valid_kept_lift_{name}'), '.1%')} | "
            f"{cell(figures.get(f'test_kept_lift_{name}'), '.1%')} |"
        )
    return lines


def publish_summary(
    key: str,
    title: str,
    facts: dict[str, object],
    encode: dict[str, dict[str, float]],
    indexes: dict[str, IndexReport],
    statistics: dict | None = None,
    compatibility: CompatibilityRecord | None = None,
) -> None:
    """One markdown artifact per run, under a stable key so the UI shows its history.

    ``statistics`` are the ones recorded with the snapshot: norms, the cosine
    of unchanged texts and neighbour overlap against the parent, the
    alignment map's fit across a model change; ``compatibility`` how the
    previous model's CTR model scores the new vectors, across a model change.
    """
    lines = [f"## {title}", ""]
    lines += [f"- **{name}**: {value}" for name, value in facts.items()]
    if encode:
        lines += ["", *_encode_rows(encode)]
    if indexes:
        lines += ["", *_index_rows(indexes)]
    if statistics:
        lines += ["", "Statistics:", "", "```", *summary_lines(statistics), "```"]
    if compatibility:
        lines += ["", *compatibility_rows(compatibility)]
    create_markdown_artifact(key=key, markdown="\n".join(lines), description=title)
