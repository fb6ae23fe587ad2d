import pytest


@pytest.fixture(scope="session", autouse=True)
def flows_use_the_prefect_server(prefect_server: None) -> None:
    """Every flow test runs against the session's ephemeral server (tests/conftest.py)."""
