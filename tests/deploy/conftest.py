"""Fixtures for the deploy tests: a fake Bifrost server and a repository wired to it.

The helpers the tests import by name (Env, canary, mapping, no_leaks, the org UUIDs) live in
deploy_support.py; tests/conftest.py's isolated_home already cleared SOPS_*/BIFROST_* and HOME.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .deploy_support import Env, make_env
from .fakebifrost import FakeBifrost


@pytest.fixture
def bf() -> Iterator[FakeBifrost]:
    with FakeBifrost() as fake:
        yield fake


@pytest.fixture
def denv(tmp_path: Path, bf: FakeBifrost) -> Env:
    """A repository with sealed canary secrets, its age key, and `bf` holding three organizations."""
    return make_env(tmp_path, bf)
