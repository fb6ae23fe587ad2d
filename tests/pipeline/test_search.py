import json
from pathlib import Path

import yaml

from marc_batch.pipeline.refresh import refresh
from marc_batch.pipeline.search import search
from tests.conftest import run_cli
from tests.tiny import config_for


def test_search_by_id_and_by_text_through_the_cli(tmp_path: Path, registry: Path) -> None:
    config = config_for(tmp_path, registry)
    published = refresh(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    by_id = run_cli("search", "--config", str(path), "--id", "3", "-k", "5", "--json")
    assert by_id.returncode == 0, by_id.stderr
    result = json.loads(by_id.stdout)
    assert result["version"] == published.version
    neighbours = result["neighbours"]
    assert len(neighbours) == 5 and "3" not in {n["id"] for n in neighbours}
    assert [n["score"] for n in neighbours] == sorted(
        (n["score"] for n in neighbours), reverse=True
    )
    assert all(n["title"] for n in neighbours)

    by_text = search(config, "latest", 3, text="red comedy movie")
    assert len(by_text.neighbours) == 3

    missing = run_cli("search", "--config", str(path), "--id", "no-such-item")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: item 'no-such-item' is not in snapshot version 1"
