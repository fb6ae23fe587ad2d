import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """One ephemeral Prefect server for every flow test: it takes seconds to start."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
