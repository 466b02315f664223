"""Tests: see the module docstrings."""
