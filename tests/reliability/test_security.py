"""Security: nothing escapes the store root, templates reach only their fields, models and
indexes are verified before use (a pickle never runs), and no secret is ever written.

What earlier suites already prove is not repeated here: hostile manifest paths
(tests/store/test_integrity.py), template syntax (tests/data/test_templates.py),
tampered or added artifact files (tests/model/test_artifact.py).
"""

import asyncio
import base64
import json
import logging
import os
import pickle
import re
import shutil
from pathlib import Path

import boto3
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import marc_batch.pipeline.encoders as encoders
from marc_batch.config import S3Config
from marc_batch.data.templates import Template
from marc_batch.errors import ArtifactError, CorruptFile, ManifestError, StoreError, TemplateError
from marc_batch.model.artifact import ArtifactManifest, _listing, content_version
from marc_batch.model.registry import Registry
from marc_batch.pipeline.publish import publish
from marc_batch.pipeline.refresh import refresh
from marc_batch.pipeline.search import search
from marc_batch.store import Store, Transaction, open_snapshot
from marc_batch.store.validate import validate
from tests.pipeline.test_backfill import edit_items
from tests.reliability.helpers import published, write_config
from tests.tiny import config_for

LAYOUT = re.compile(
    r"^(_manifests/v\d{12}\.json"
    r"|_channels/[A-Za-z0-9_.-]+\.json(\.lock)?"
    r"|data/entity=(item|user)/shard=\d+/[0-9a-f]{32}\.parquet"
    r"|deletes/entity=(item|user)/[0-9a-f]{32}\.parquet"
    r"|indexes/entity=(item|user)/[0-9a-f]{32}\.faiss"
    r"|behaviours/[0-9a-f]{32}\.parquet"
    r"|meta/(statistics|alignment)-[0-9a-f]{32}\.(json|safetensors)"
    r"|quarantine/[A-Za-z0-9_.=+-]+/(items|users|interactions)\.parquet)$"
)
HOSTILE_IDS = [
    "../../../escaped",
    "/etc/passwd",
    "entity=user/shard=0",
    "..",
    "C:\\windows",
    "shard=99",
    "%2e%2e%2f",
]


class Detonator:
    """A pickle that, if anything ever unpickled it, would leave a file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the pickle ran"))


def test_ids_and_partition_values_never_leave_the_store_root(
    tmp_path: Path, registry: Path, ledger
) -> None:
    config = config_for(tmp_path / "run", registry)
    items = Path(config.sources.items.path)
    items.write_text(
        items.read_text()
        + "".join(f'"{i}",hostile id {n},1999,drama\n' for n, i in enumerate(HOSTILE_IDS))
    )
    config.sources.max_quarantine_fraction = 1.0
    report = refresh(config)
    assert report.rows["item"] == 60 + len(HOSTILE_IDS)
    store = Store(config.store)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    root = Path(config.store.root)
    outside = [p for p in written if root not in p.parents and "catalogue" not in p.parts]
    assert outside == []
    stored = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    stray = [path for path in stored if not LAYOUT.match(path)]
    assert stray == []
    ids, _ = open_snapshot(store).matrix("item")
    assert set(HOSTILE_IDS) <= set(ids.tolist())  # stored as data, never as paths

    txn = Transaction(store, model_version="m1", k=4)
    with pytest.raises(ManifestError, match="unknown entity"):
        txn.write("../item", ["a"], np.ones((1, 4)), ["h"])
    with pytest.raises(StoreError, match="shard -1 is outside"):
        txn.write("item", ["a"], np.ones((1, 4)), ["h"], shard=-1)
    txn.abort()
    for run_id in ("../../escaped", "a/b", "..", "x" * 200):
        with pytest.raises(ManifestError, match="bad run id"):
            refresh(config, run_id=run_id)
    for ref in ("../../etc/passwd", "latest/../../x", "/abs"):
        with pytest.raises(ManifestError):
            store.resolve(ref)
    with pytest.raises(ManifestError, match="bad channel name"):
        publish(store, report.version, "../prod")
    assert [p for p in tmp_path.rglob("*escaped*")] == []
    for check in (
        "ids that look like paths are data",
        "entity names outside the whitelist",
        "shard numbers outside the store's range",
        "run ids that would leave quarantine/",
        "snapshot references and channel names that are paths",
    ):
        ledger("security", check=f"store root: {check}")


SOURCES = st.text(alphabet="{}[]()!:.#_0123456789abc xyz\\'\"$%", max_size=24)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(SOURCES)
def test_templates_either_render_plain_fields_or_are_refused(source: str) -> None:
    try:
        template = Template(source)
    except TemplateError:
        return
    for field in template.fields:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field), field
    table = pa.table({name: [f"<{name}>"] for name in set(template.fields)} or {"x": [1]})
    rendered = template.render(table).to_pylist()[0]
    expected = "".join(literal + (f"<{f}>" if f else "") for literal, f in template.parts)
    assert rendered == expected


def test_templates_reach_only_the_record_s_own_columns(ledger) -> None:
    table = pa.table({"title": ["Heat"]})
    for source in ("{__class__}", "{_row}", "{__builtins__}", "{self}", "{config}"):
        with pytest.raises(TemplateError, match="unknown field"):
            Template(source).render(table)
    for source in ("{title.__class__}", "{title[0]}", "{title!r}", "{0}", "{title:{title}}"):
        with pytest.raises(TemplateError):
            Template(source)
    ledger("security", check="templates: 300 generated sources render plain fields or are refused")
    ledger("security", check="templates: no attribute, index, conversion, spec or hidden column")


def test_a_pickle_in_a_model_never_runs(tmp_path: Path, registry: Path, ledger) -> None:
    models = tmp_path / "models"
    shutil.copytree(registry, models)
    version = Registry(models).current()
    directory = models / version
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Detonator(marker))
    config = config_for(tmp_path, models)

    # A pickled weights file dropped next to the real ones.
    (directory / "backbone" / "pytorch_model.bin").write_bytes(payload)
    encoders._loaded.clear()
    with pytest.raises(ArtifactError, match=r"pytorch_model\.bin is not in the manifest"):
        refresh(config)
    (directory / "backbone" / "pytorch_model.bin").unlink()

    # The weights replaced by a pickle, with a manifest rewritten to match it.
    (directory / "heads.safetensors").write_bytes(payload)
    files = _listing(directory)
    rewritten = ArtifactManifest(version=content_version(files), files=files)
    (directory / "manifest.json").write_text(rewritten.model_dump_json())
    encoders._loaded.clear()
    with pytest.raises(ArtifactError, match=f"not {version}; refusing"):
        refresh(config)
    assert not marker.exists()
    assert Store(config.store).versions() == []
    ledger("security", check="models: a pickle added to an artifact is refused, never loaded")
    ledger("security", check="models: files replaced along with their manifest are refused")


def test_a_tampered_index_is_refused_before_use(tmp_path: Path, registry: Path, ledger) -> None:
    config = config_for(tmp_path, registry)
    report = refresh(config)
    store = Store(config.store)
    index = store.manifest(report.version).indexes[0]
    marker = tmp_path / "pwned"
    path = Path(config.store.root) / index.path
    path.write_bytes(pickle.dumps(Detonator(marker)))
    with pytest.raises(CorruptFile, match="sha256 differs"):
        search(config, "latest", 5, item_id="3")
    with pytest.raises(CorruptFile, match="sha256 differs"):
        publish(store, report.version, "prod")
    assert any("sha256 differs" in problem for problem in validate(store, store.head()))
    assert not marker.exists() and "prod" not in published(store)[1]
    ledger("security", check="indexes: a replaced index is refused by search and publish")


SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEACCESSKEY7Q3Z",
    "AWS_SECRET_ACCESS_KEY": "fake/Secret+Key/0123456789abcdefghijKLMNOP",
    "AWS_SESSION_TOKEN": "FakeSessionToken//ZXhhbXBsZS10b2tlbi12YWx1ZQ==",
    "PREFECT_API_KEY": "pnu_fakeprefectapikey0123456789abcdefgh",
}


def forms(secret: str) -> list[bytes]:
    """The ways a secret could be written: as is, JSON-escaped, base64."""
    raw = secret.encode()
    return [raw, json.dumps(secret).encode()[1:-1], base64.b64encode(raw)]


def prefect_records() -> list[bytes]:
    """Everything the Prefect server stored about the runs: logs, artifacts, runs."""
    from prefect.client.orchestration import get_client

    async def read() -> list[bytes]:
        async with get_client() as client:
            found = [
                *await client.read_logs(),
                *await client.read_artifacts(),
                *await client.read_flow_runs(),
                *await client.read_task_runs(),
            ]
            return [item.model_dump_json().encode() for item in found]

    return asyncio.run(read())


def test_no_secret_is_written_to_the_store_logs_or_prefect(
    tmp_path: Path,
    registry: Path,
    s3_endpoint: str,
    bucket: str,
    prefect_server: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
    ledger,
) -> None:
    from flows.backfill import backfill_flow
    from flows.nightly_refresh import nightly_refresh
    from flows.publish import publish_flow
    from marc_batch.parameters import BackfillParameters, PublishParameters, RefreshParameters

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.INFO)
    for name in ("marc_batch", "flows", "prefect"):
        caplog.set_level(logging.DEBUG, logger=name)
    config = config_for(tmp_path, registry)
    items = tmp_path / "catalogue" / "items.csv"
    items.write_text(items.read_text() + "100,,2001,drama\n")  # one row for quarantine
    config.store.root = f"s3://{bucket}/snapshots"
    config.store.s3 = S3Config(endpoint_url=s3_endpoint)
    path = write_config(tmp_path / "marc-batch.yaml", config)

    refreshed = nightly_refresh(RefreshParameters(config=path))
    edit_items(items)
    changed = backfill_flow(BackfillParameters(config=path))
    assert changed.committed
    assert publish_flow(PublishParameters(config=path, snapshot="latest", channel="prod")) == 2

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.startswith("snapshots/quarantine/") for k in keys)
    written = {
        f"s3://{bucket}/{k}": client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys
    }
    for local in tmp_path.rglob("*"):
        if local.is_file() and "catalogue" not in local.parts:
            written[str(local)] = local.read_bytes()
    written["reports"] = (refreshed.model_dump_json() + changed.model_dump_json()).encode()
    written["prefect"] = b"\n".join(prefect_records())
    out, err = capfd.readouterr()
    written["stdout"], written["stderr"] = out.encode(), err.encode()
    written["logs"] = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert b"published version 1" in written["prefect"]  # the flow-run logs were read

    leaks = [
        f"{name} in {where}"
        for where, data in written.items()
        for name, secret in SECRETS.items()
        for form in forms(secret)
        if form in data
    ]
    assert leaks == []
    ledger(
        "security",
        check=f"secrets: {len(SECRETS)} fake credentials in the environment; "
        f"{len(written)} outputs scanned (store objects, manifests, quarantine, "
        "Prefect logs, artifacts and runs, captured logs and output): none leaked",
    )
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRETS["AWS_SECRET_ACCESS_KEY"]
