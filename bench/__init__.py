"""Benchmarks (see README.md): run as ``python -m bench.<name>``."""
