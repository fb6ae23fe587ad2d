"""Experiments: runs that choose settings (and record how), unlike benchmarks, which measure.

Each is run from the repository root as ``python -m experiments.NAME`` and
writes under ``experiments/results/``; ``make bench`` never runs them.
"""
