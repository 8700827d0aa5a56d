"""compile after a change renders only the organizations whose inputs changed, and the bundle it
leaves is byte for byte the one a cold compile into a fresh folder writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bifrost_gitops
from bifrost_gitops import bundle, codedigest, deploymanifest
from test_compile import ORGS, RUNTIME_RECIPIENT, compile_, snapshot
from test_resolve import (
    DOCS_TAILSPIN,
    FILES,
    HALO,
    HALO_CONTOSO,
    HALO_FABRIKAM,
    HALO_TAILSPIN,
    KEY_FILE,
    MICROSOFT,
    ORG_IDS,
    SECRETS,
    build_repo,
    canary,
    seal_yaml,
)

KEY = {"SOPS_AGE_KEY_FILE": str(KEY_FILE)}


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The organizations compile renders (resolves and writes anew), in order."""
    seen: list[str] = []
    real = bundle.org_record

    def spy(catalog: Any, org: str | None, reveal: Any) -> bundle.Record:
        if org is not None:
            seen.append(org)
        return real(catalog, org, reveal)

    monkeypatch.setattr(bundle, "org_record", spy)
    yield seen


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The integrations whose deploy.json entry compile builds (with their secrets), in order."""
    seen: list[str] = []
    real = deploymanifest.integration

    def spy(catalog: Any, name: str, *rest: Any) -> Any:
        seen.append(name)
        return real(catalog, name, *rest)

    monkeypatch.setattr(deploymanifest, "integration", spy)
    yield seen


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repo(tmp_path / "repo")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def recompiled(repo: Path, out: Path, rendered: list[str], *args: str) -> list[str]:
    """Compile REPO into OUT again; the organizations that were rendered."""
    rendered.clear()
    assert compile_(repo, out, *args, env=KEY).code == 0
    return sorted(rendered)


def assert_as_cold(repo: Path, out: Path, tmp_path: Path, *args: str) -> None:
    cold = tmp_path / "cold"
    assert compile_(repo, cold, *args, env=KEY).code == 0
    assert snapshot(out) == snapshot(cold)


ALL = ["Docs", "Graph", "HaloPSA", "Ninja"]
NEW_CONTOSO_ID = "3f0c1d2e-0000-4000-8000-0000000000ff"


def rename_tailspin(r: Path) -> None:
    edit(r / "organizations.yaml", "  - name: tailspin\n", "  - name: tailwind\n")
    for rel in (HALO_TAILSPIN, DOCS_TAILSPIN):
        edit(r / rel, "organization: tailspin", "organization: tailwind")


#: an edit, the organizations whose file is rendered again, the integrations whose deploy.json
#: entry is built again (every other one is taken over from the previous deploy.json)
EDITS: dict[str, tuple[Callable[[Path], None], list[str], list[str]]] = {
    "a mapping": (lambda r: edit(r / HALO_FABRIKAM, "region: us", "region: eu"), ["fabrikam"], ["HaloPSA"]),
    "a deleted mapping": (lambda r: (r / HALO_FABRIKAM).unlink(), ["fabrikam"], ["HaloPSA"]),
    "an integration's defaults": (lambda r: edit(r / HALO, "page_size: 100", "page_size: 99"), ORGS, ["HaloPSA"]),
    "an integration's schema": (lambda r: edit(r / HALO, "  - key: tenant\n", "  - key: site\n    type: string\n  - key: tenant\n"), ORGS, ["HaloPSA"]),
    "a provider": (lambda r: edit(r / MICROSOFT, "client_id: ms-client-id", "client_id: ms-client-id-2"), ORGS, ["Graph"]),
    "an organization's entry": (
        lambda r: edit(r / "organizations.yaml", "display_name: Contoso Ltd", "display_name: Contoso Group"),
        ["contoso"],
        [],
    ),
    "an organization's id": (
        lambda r: edit(r / "organizations.yaml", ORG_IDS["contoso"], NEW_CONTOSO_ID), ["contoso"], ["Graph", "HaloPSA"]
    ),
    "an organization added": (
        lambda r: edit(r / "organizations.yaml", "  - name: tailspin\n", "  - name: tailspin\n  - name: woodgrove\n"),
        ["woodgrove"],
        [],
    ),
    "an organization removed": (
        lambda r: edit(r / "organizations.yaml", "  - name: northwind\n    display_name: Northwind (no mapping anywhere)\n", ""),
        [],
        [],
    ),
    "an organization renamed": (rename_tailspin, ["tailwind"], ["Docs", "HaloPSA"]),
    "the project settings": (lambda r: edit(r / "bifrost-gitops.yaml", "kind: Project\n", "kind: Project\nexclude: [drafts/**]\n"), ORGS, ALL),
}  # fmt: skip


@pytest.mark.parametrize("mode", ["redact", "plain"])
@pytest.mark.parametrize("what", list(EDITS))
def test_one_change_renders_only_the_affected_orgs_and_equals_a_cold_compile(
    repo: Path, tmp_path: Path, rendered: list[str], built: list[str], mode: str, what: str
) -> None:
    change, affected, integrations = EDITS[what]
    out = tmp_path / "bundle"
    assert recompiled(repo, out, rendered, "--secrets", mode) == sorted(ORGS)
    assert sorted(built) == ALL
    before = snapshot(out)
    built.clear()
    assert recompiled(repo, out, rendered, "--secrets", mode) == []  # nothing changed: nothing rendered
    assert built == []  # nor any deploy.json entry built
    change(repo)
    assert recompiled(repo, out, rendered, "--secrets", mode) == sorted(affected)
    assert sorted(built) == integrations
    after = snapshot(out)
    org_files = {rel for rel in {*before, *after} if rel.startswith("orgs/")}
    differ = {rel for rel in org_files if before.get(rel) != after.get(rel)}
    gone = {rel for rel in before if rel not in after}
    assert differ <= {f"orgs/{org}.json" for org in [*affected, "northwind"]} | gone
    if affected == ["fabrikam"]:  # a mapping's value shows in its organization's file only
        assert differ == {"orgs/fabrikam.json"}
    if what == "an organization's entry":  # a display name is not in the deploy manifest
        assert before["deploy.json"] == after["deploy.json"]
    assert_as_cold(repo, out, tmp_path, "--secrets", mode)


def test_the_index_records_each_orgs_inputs(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "redact").code == 0
    index = json.loads((out / "index.json").read_text())
    inputs = [index["orgs"][org]["inputs"] for org in ORGS]
    assert all(len(i) == 64 for i in inputs) and len(set(inputs)) == len(ORGS)
    assert len(index["global"]["inputs"]) == 64
    # a clear deploy.json: where each integration's entry sits, and what it was made from
    parts = index["deploy"]["integrations"]
    assert sorted(parts) == ["Docs", "Graph", "HaloPSA", "Ninja"] and "inputs" not in index["deploy"]
    data = (out / "deploy.json").read_bytes()
    manifest = json.loads(data)
    for entry in manifest["integrations"]:
        part = parts[entry["name"]]
        assert json.loads(data[part["start"] : part["end"]]) == entry


def test_a_new_secrets_mode_renders_every_org(repo: Path, tmp_path: Path, rendered: list[str]) -> None:
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "redact")
    assert recompiled(repo, out, rendered, "--secrets", "plain") == sorted(ORGS)
    assert_as_cold(repo, out, tmp_path, "--secrets", "plain")


def test_a_new_tool_version_renders_every_org(
    repo: Path, tmp_path: Path, rendered: list[str], built: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "redact")
    monkeypatch.setattr(bifrost_gitops, "__version__", bifrost_gitops.__version__ + ".post1")
    codedigest.of.cache_clear()
    try:
        built.clear()
        assert recompiled(repo, out, rendered, "--secrets", "redact") == sorted(ORGS)
        assert sorted(built) == ALL  # and every deploy.json entry
        assert_as_cold(repo, out, tmp_path, "--secrets", "redact")
    finally:  # the next compile sees this version again
        monkeypatch.undo()
        codedigest.of.cache_clear()


def test_new_recipients_reseal_every_org(repo: Path, tmp_path: Path, rendered: list[str]) -> None:
    import pyrage  # type: ignore[import-untyped]

    other = str(pyrage.x25519.Identity.generate().to_public())
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT)
    before = snapshot(out)
    assert recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT) == []
    assert snapshot(out) == before  # sealed files kept byte for byte
    assert recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT, "--recipient", other) == sorted(
        ORGS
    )
    after = snapshot(out)
    assert all(before[f"orgs/{org}.json"] != after[f"orgs/{org}.json"] for org in ORGS)
    assert all(other in after[f"orgs/{org}.json"].decode() for org in ORGS)


def test_a_sealed_file_is_kept_only_with_the_same_keys(
    repo: Path, tmp_path: Path, rendered: list[str]
) -> None:
    """The entry is keyed by the compile environment's keys: another keyring renders anew."""
    import pyrage

    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT)
    extra = tmp_path / "keys.txt"
    extra.write_text(KEY_FILE.read_text() + f"\n{pyrage.x25519.Identity.generate()}\n")
    rendered.clear()
    run = compile_(repo, out, "--recipient", RUNTIME_RECIPIENT, env={"SOPS_AGE_KEY_FILE": str(extra)})
    assert run.code == 0
    assert sorted(rendered) == sorted(ORGS)


@pytest.mark.parametrize("index_too", [False, True], ids=["file", "file and its sha256"])
def test_a_tampered_previous_file_is_rebuilt(
    repo: Path, tmp_path: Path, rendered: list[str], index_too: bool
) -> None:
    import hashlib

    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "redact")
    good = (out / "orgs" / "contoso.json").read_bytes()
    forged = good.replace(b"Contoso in Halo", b"Someone else")
    assert forged != good
    target = out / "orgs" / "contoso.json"
    target.unlink()  # a new file: the old one may be a hard link shared with nothing else
    target.write_bytes(forged)
    if index_too:
        index = json.loads((out / "index.json").read_text())
        index["orgs"]["contoso"]["sha256"] = hashlib.sha256(forged).hexdigest()
        (out / "index.json").write_text(json.dumps(index))
    assert recompiled(repo, out, rendered, "--secrets", "redact") == ["contoso"]
    assert target.read_bytes() == good
    assert_as_cold(repo, out, tmp_path, "--secrets", "redact")


def test_resolving_without_lines_gives_the_same_values_and_source_files(repo: Path) -> None:
    """What compile resolves (no lines: no positions unpacked) is what explain resolves."""
    from dataclasses import replace

    from bifrost_gitops.resolve import Resolved, resolve_org
    from support import load

    catalog = load(repo).catalog

    def where(r: Resolved) -> dict[str, tuple[str, str | None]]:
        found: dict[str, tuple[str, str | None]] = {k: (s.kind, s.file) for k, s in r.sources.items()}
        found.update(
            {f"oauth.{k}": (s.kind, s.file) for k, s in (r.oauth.sources if r.oauth else {}).items()}
        )
        return found

    def bare(r: Resolved) -> Resolved:
        return replace(r, sources={}, oauth=replace(r.oauth, sources={}) if r.oauth else None)

    for org in [None, *ORGS]:
        full, quick = resolve_org(catalog, org), resolve_org(catalog, org, lines=False)
        assert list(full) == list(quick)
        for name, r in full.items():
            assert bare(quick[name]) == bare(r)
            assert where(quick[name]) == where(r)
            assert all(s.line == 0 for s in quick[name].sources.values())
        assert any(s.line > 0 for r in full.values() for s in r.sources.values())


def test_a_rotated_secret_reaches_its_organizations_file(
    repo: Path, tmp_path: Path, rendered: list[str]
) -> None:
    """Only the ciphertext changes in the repository; the organization's file must still be
    rendered again with the new value (plain), and equal a cold compile."""
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "plain")
    old, new = SECRETS["halo-contoso-api-key"], canary("ROTATED")
    assert old in FILES[HALO_CONTOSO]
    (repo / HALO_CONTOSO).write_text(seal_yaml(FILES[HALO_CONTOSO].replace(old, new)))
    assert recompiled(repo, out, rendered, "--secrets", "plain") == ["contoso"]
    text = (out / "orgs" / "contoso.json").read_text()
    assert new in text and old not in text
    assert_as_cold(repo, out, tmp_path, "--secrets", "plain")
