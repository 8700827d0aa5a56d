"""Helpers shared by the sops tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

#: vectors made by the real sops 3.11.0 (see vectors/README.md), with their throwaway test keys
VECTORS = Path(__file__).resolve().parent / "vectors"
R1 = "age1npag5334sd7lxzllnxk0nm5krrnp7qgtvpffevqc43yctcen2feqepne6x"
R2 = "age1n67ekxjxlq7vtzy9keedc344wd76krp0a63c8kwg68uzjflexf2q40lv7f"


def run_sops(
    exe: str, *args: str, cwd: Path, key_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real sops with only ``key_file`` as its age identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    if key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(key_file)
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def typed(value: Any) -> Any:
    """A structure that compares types too (1 != 1.0 != True), for exact data comparisons."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)
