import asyncio

from prefect.client.orchestration import get_client

from flows.ingest_catalogue import ingest_catalogue


def test_flow_ingests_and_publishes_its_report(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARC_BATCH_STORE__ROOT", str(tmp_path / "store"))
    state = ingest_catalogue(return_state=True)
    assert state.is_completed()
    report = state.result()
    assert (report.items, report.users, report.interactions) == (1682, 943, 100000)

    async def artifact_markdown() -> str:
        async with get_client() as client:
            artifacts = await client.read_latest_artifacts()
            return next(a.data for a in artifacts if a.key == "ingest-report")

    markdown = asyncio.run(artifact_markdown())
    assert "| items | 1682 | 1682 | 0 | - |" in markdown
