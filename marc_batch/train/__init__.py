"""Training recipes and the evaluation protocol for MARC and its baselines."""
