"""Fixtures for the sops tests: the shared vectors and test identities.

Like every test, these run with no SOPS_* variables and HOME / XDG_CONFIG_HOME pointing into
tmp_path (tests/conftest.py's isolated_home), so neither our key discovery nor the sops binary
can pick up the developer's real keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops.sops.binary import find_sops

from ._sops_helpers import VECTORS


@pytest.fixture
def vectors() -> Path:
    if not (VECTORS / "keys.txt").is_file():
        pytest.skip(f"shared sops vectors not found at {VECTORS}")
    return VECTORS


@pytest.fixture
def key1(vectors: Path) -> Any:
    from bifrost_gitops.sops import parse_identities

    return parse_identities((vectors / "keys.txt").read_text())[0]


@pytest.fixture
def key2(vectors: Path) -> Any:
    from bifrost_gitops.sops import parse_identities

    return parse_identities((vectors / "keys-second.txt").read_text())[0]


@pytest.fixture
def sops_bin() -> str:
    exe = find_sops()
    if exe is None:
        pytest.skip("sops binary not installed")
    return exe


@pytest.fixture
def fresh_key(tmp_path: Path) -> tuple[Any, str, Path]:
    """A new age identity, its recipient, and a keys file holding it."""
    ident = pyrage.x25519.Identity.generate()
    path = tmp_path / "fresh-keys.txt"
    path.write_text(f"# created: now\n{ident}\n")
    return ident, str(ident.to_public()), path
