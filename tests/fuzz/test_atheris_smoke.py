"""A short, bounded run of the atheris fuzzer so the script cannot rot; skipped without atheris
(it is an optional tool: ``pip install atheris``; wheels exist for CPython 3.11 x86_64)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

SCRIPT = Path(__file__).with_name("fuzz_control.py")
ROOT = Path(__file__).resolve().parents[2]


def test_atheris_fuzzer_runs_3000_inputs_without_a_finding(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "-runs=3000", "-max_len=2048", "-seed=1", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done 3000 runs" in result.stderr
