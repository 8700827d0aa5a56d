"""Fixtures; the helpers they use live in support.py (importable by name from the tests)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from support import Run, run_cli, write_repo


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1_000_000))

    def make(files: Mapping[str, str | None] | None = None, *, base: bool = True) -> Path:
        return write_repo(tmp_path / f"repo{next(counter)}", files, base)

    return make


@pytest.fixture
def cli() -> Callable[..., Run]:
    return run_cli


@pytest.fixture(params=["inprocess", "subprocess"])
def any_cli(request: pytest.FixtureRequest) -> Callable[..., Run]:
    """The CLI run both ways (in-process and as a real child process)."""
    sub = request.param == "subprocess"

    def run(*args: str, **kw: Any) -> Run:
        return run_cli(*args, subprocess=sub, **kw)

    return run
