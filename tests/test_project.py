"""The project keeps its own promises: documented codes, ruff and mypy --strict clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bifrost_gitops.diagnostics import CODES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_every_error_code_is_documented() -> None:
    doc = (ROOT / "docs" / "error-codes.md").read_text()
    missing = [code for code in CODES if f"`{code}`" not in doc]
    assert not missing, f"add these codes to docs/error-codes.md: {missing}"


@pytest.mark.parametrize(
    "cmd",
    [
        ["ruff", "check", "src", "tests", "benchmarks", "dev.py"],
        ["ruff", "format", "--check", "src", "tests", "benchmarks", "dev.py"],
        ["mypy"],
    ],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_code_quality_gate(cmd: list[str]) -> None:
    tool = BIN / cmd[0]
    if not tool.exists():
        pytest.skip(f"{cmd[0]} is not installed in this environment")
    run = subprocess.run([str(tool), *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
