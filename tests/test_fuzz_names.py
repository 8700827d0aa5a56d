"""Fuzz: hostile names and file names planted in a real repository never reach validate's
output unescaped, in any format (text, json, GitHub annotations)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given

from hostile import FUZZ, assert_safe, hostile
from support import BASE_FILES, run_cli, write_repo

INTEG = "integrations/HaloPSA/integration.yaml"
MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
ORGS = "organizations.yaml"


def q(text: str) -> str:
    """TEXT as a YAML double-quoted scalar (JSON's escapes are YAML's too)."""
    return json.dumps(text)


def plant(root: Path, name: str, file_name: str) -> Path:
    """NAME in every place a repository declares text that findings may quote; a file named
    FILE_NAME beside them. Returns that file's path (the caller removes it)."""
    files = {
        INTEG: BASE_FILES[INTEG].replace("entity_id_name: Client ID", f"entity_id_name: {q(name)}")
        + f"description: {q(name)}\n{q(name)}: 1\n",
        MAPPING: BASE_FILES[MAPPING].replace("region: eu", f"region: {q(name)}\n  {q('k' + name)}: 1")
        + f"entity_name: {q(name)}\n",
        ORGS: BASE_FILES[ORGS].replace("display_name: Contoso Ltd", f"display_name: {q(name)}"),
    }
    for rel, text in files.items():
        (root / rel).write_text(text, encoding="utf-8")
    extra = root / "integrations" / file_name
    extra.write_text(
        "apiVersion: bifrost-gitops/v1\nkind: Mapping\n"
        f"integration: {q(name)}\norganization: contoso\nentity_id: {q(name)}\n",
        encoding="utf-8",
    )
    return extra


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repo(tmp_path_factory.mktemp("fuzz-names") / "repo")


file_names = hostile.map(lambda s: "f" + s.replace("/", "").replace("\x00", "") + ".yaml").filter(
    lambda s: len(os.fsencode(s)) < 200
)


@FUZZ
@given(name=hostile, file_name=file_names)
def test_hostile_names_never_reach_validate_output(repo: Path, name: str, file_name: str) -> None:
    extra = plant(repo, name, file_name)
    try:
        for fmt in ("text", "json", "github"):
            run = run_cli("validate", str(repo), "--format", fmt)
            assert run.code == 1, run.output  # the planted file alone has findings
            assert_safe(run.stdout, fmt)
            assert_safe(run.stderr, fmt)
            if fmt == "json":
                assert run.stdout.isascii()
                doc = json.loads(run.stdout)
                paths = {d["path"] for d in doc["diagnostics"]}
                assert f"integrations/{file_name}" in paths  # the name survives, escaped only
    finally:
        extra.unlink()
