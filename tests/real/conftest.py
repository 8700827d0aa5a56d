"""The real-server tier: Bifrost itself, brought up on loopback by the team's test harness.

The harness (``up.sh`` beside a Bifrost checkout) is not part of this project: when it is absent
every ``real_bifrost`` test skips with a plain reason. ``.ci/run`` brings the server up first and
passes its exports in ``BIFROST_REAL_ENV`` (or a failure reason in ``BIFROST_REAL_SKIP``), so the
fixture does not log in a second time; run alone, the fixture calls ``up.sh`` itself (idempotent).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT.parent / "shared" / "bifrost"
# Read now: the suite's isolation fixture clears BIFROST_* from every test's environment.
_ENV = {k: v for k, v in os.environ.items() if k in ("BIFROST_SRC", "BIFROST_REAL_ENV", "BIFROST_REAL_SKIP")}
_EXPORT = re.compile(r"^export (BIFROST_API_URL|BIFROST_ACCESS_TOKEN|BIFROST_REFRESH_TOKEN)=(\S+)$", re.M)


class RealBifrost(NamedTuple):
    url: str
    credentials: Path  # {api_url, access_token, refresh_token}; the CLI writes rotations back


@pytest.hookimpl(tryfirst=True)  # before -m selects by it (dev.py runs this tier on its own)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real_bifrost)


_TIER = {"passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0}
_SKIPS: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/real/" not in report.nodeid:
        return
    _TIER["seconds"] += report.duration
    if report.skipped and isinstance(report.longrepr, tuple):
        _SKIPS.add(str(report.longrepr[2]).removeprefix("Skipped: "))
    if report.when == "call" or report.skipped or report.failed:
        _TIER[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly whether the real-server tier ran, and how long it took (its set-up included)."""
    if not any(_TIER[k] for k in ("passed", "failed", "skipped")):
        return
    counts = ", ".join(f"{_TIER[k]} {k}" for k in ("passed", "failed", "skipped") if _TIER[k])
    terminalreporter.write_line(f"real-server tier (tests/real): {counts} in {_TIER['seconds']:.1f} s")
    for reason in sorted(_SKIPS):
        terminalreporter.write_line(f"real-server tier SKIPPED: {reason}", yellow=True, bold=True)


def _exports(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip("'\"") for m in _EXPORT.finditer(text)}


def _bring_up() -> str:
    """The harness's exports, or a skip (a missing peer is an environment condition, not a failure)."""
    if reason := _ENV.get("BIFROST_REAL_SKIP"):
        pytest.skip(f"real Bifrost not available: {reason}")
    if env_file := _ENV.get("BIFROST_REAL_ENV"):
        return Path(env_file).read_text(encoding="utf-8")
    src = Path(_ENV.get("BIFROST_SRC") or HARNESS / "src")
    up = HARNESS / "up.sh" if (HARNESS / "up.sh").is_file() else src.parent / "up.sh"
    if not (src / "api" / "src" / "main.py").is_file() or not up.is_file():
        pytest.skip("real Bifrost not available: set BIFROST_SRC")
    proc = subprocess.run(
        ["bash", str(up)],
        env={**os.environ, "BIFROST_SRC": str(src)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"real Bifrost not available: up.sh exited {proc.returncode}: {tail[0]}")
    return proc.stdout


@pytest.fixture(scope="session")
def real_bifrost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBifrost]:
    found = _exports(_bring_up())
    if len(found) != 3:
        pytest.skip("real Bifrost not available: the harness printed no credentials")
    creds = tmp_path_factory.mktemp("realbifrost") / "credentials.json"
    creds.write_text(
        json.dumps(
            {
                "api_url": found["BIFROST_API_URL"],
                "access_token": found["BIFROST_ACCESS_TOKEN"],
                "refresh_token": found["BIFROST_REFRESH_TOKEN"],
            }
        ),
        encoding="utf-8",
    )
    creds.chmod(0o600)
    yield RealBifrost(found["BIFROST_API_URL"], creds)
