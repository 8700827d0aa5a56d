"""The real-server tier's fixture: without the team's harness it skips, plainly, and never fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from real import conftest as tier


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tier, "_ENV", {})
    monkeypatch.setattr(tier, "HARNESS", tmp_path / "absent")
    return tmp_path


def test_no_source_skips_with_the_plain_reason(nowhere: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match=r"^real Bifrost not available: set BIFROST_SRC$"):
        tier._bring_up()


def test_a_start_that_failed_in_ci_skips_with_its_reason(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tier, "_ENV", {"BIFROST_REAL_SKIP": "up.sh exited 7 in CI"})
    with pytest.raises(pytest.skip.Exception, match=r"real Bifrost not available: up\.sh exited 7 in CI"):
        tier._bring_up()


def test_a_failing_up_script_skips_with_its_last_words(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = nowhere / "bifrost" / "src"
    (src / "api" / "src").mkdir(parents=True)
    (src / "api" / "src" / "main.py").write_text("", encoding="utf-8")
    (nowhere / "bifrost" / "up.sh").write_text(
        "echo starting >&2; echo 'no postgres' >&2; exit 7\n", encoding="utf-8"
    )
    monkeypatch.setattr(tier, "_ENV", {"BIFROST_SRC": str(src)})
    with pytest.raises(pytest.skip.Exception, match=r"up\.sh exited 7: no postgres$"):
        tier._bring_up()


def test_the_harness_exports_are_read_from_its_output() -> None:
    text = "noise\nexport BIFROST_API_URL=http://127.0.0.1:1\nexport BIFROST_ACCESS_TOKEN='a.b'\nexport BIFROST_REFRESH_TOKEN=r\n"
    assert tier._exports(text) == {
        "BIFROST_API_URL": "http://127.0.0.1:1",
        "BIFROST_ACCESS_TOKEN": "a.b",
        "BIFROST_REFRESH_TOKEN": "r",
    }
