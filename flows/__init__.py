"""Prefect flows: thin orchestration over the ``marc_batch`` library."""
