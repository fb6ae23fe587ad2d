"""Benchmarks of marc-batch; ``python -m benchmarks.run`` (``make bench``) runs them all."""
