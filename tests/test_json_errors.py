"""--format json for scripts: an error is a JSON object on stdout too, with the same exit code.

A script that asked for JSON parses stdout whatever happened; a person still reads the one line
on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _error(run: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run.stdout)
    assert set(doc) == {"error"}
    error: dict[str, Any] = doc["error"]
    assert error["exit_code"] == run.code
    return error


def test_validate_missing_path_is_a_json_error(any_cli: Any, tmp_path: Path) -> None:
    run = any_cli("validate", str(tmp_path / "nope"), "--format", "json")
    assert run.code == 2
    assert "no such file or directory" in _error(run)["message"]
    assert "bifrost-gitops:" in run.stderr  # the person's line is still there


def test_without_json_stdout_stays_empty(cli: Any, tmp_path: Path) -> None:
    run = cli("validate", str(tmp_path / "nope"))
    assert (run.code, run.stdout) == (2, "")


def test_click_usage_errors_are_json_too(cli: Any, make_repo: Any) -> None:
    run = cli("validate", "--format=json", "--no-such-option", str(make_repo()))
    assert run.code == 2
    assert "--no-such-option" in _error(run)["message"]
    run = cli("diff", "--format", "json", str(make_repo()))  # --base is required
    assert run.code == 2 and "--base" in _error(run)["message"]


def test_a_command_usage_line_is_json_too(cli: Any, make_repo: Any) -> None:
    run = cli("explain", str(make_repo()), "--format", "json")
    assert run.code == 2
    assert _error(run)["message"].startswith("usage: explain")


def test_diff_outside_git_is_a_json_error(cli: Any, make_repo: Any) -> None:
    run = cli("diff", str(make_repo()), "--base", "HEAD", "--format", "json")
    assert run.code == 2
    assert _error(run)["message"]


def test_hostile_text_in_a_json_error_is_escaped(cli: Any, tmp_path: Path) -> None:
    run = cli("validate", str(tmp_path / "x\u202e::error::y"), "--format", "json")
    assert run.code == 2 and run.stdout.isascii()
    assert "\u202e" in _error(run)["message"]  # the same text, as a \\u escape in the JSON
