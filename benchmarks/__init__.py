"""Benchmarks, run by hand from the repository root (``python -m benchmarks.<name>``).

:mod:`benchmarks.runner` is the shared harness: it prints median/p95 tables
and writes JSON with date, machine and command under ``benchmarks/results/``.
"""
