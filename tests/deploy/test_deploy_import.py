"""import -> validate clean -> plan shows no changes; bundle sources (sealed, redacted)."""

from __future__ import annotations

import json
from pathlib import Path

from bifrost_gitops import sops
from bifrost_gitops.bundle import SecretOpener
from bifrost_gitops.deploymanifest import manifest
from bifrost_gitops.repo import load

from .deploy_support import Env, canary, no_leaks


def test_import_round_trip(denv: Env, tmp_path: Path) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    out = tmp_path / "imported"
    r = e.cli("import", "-o", str(out), "--age", e.recipient)
    assert r.code == 0, r.output
    assert "cannot be read back" in r.stderr
    no_leaks(r.output, e)
    for f in out.rglob("*.yaml"):
        assert canary("default") not in f.read_text() and canary("fabrikam") not in f.read_text()
    assert "sops:" in (out / "integrations/HaloPSA/integration.yaml").read_text()
    r = e.cli("validate", str(out), "--strict", "--decrypt")
    assert r.code == 0, r.output
    r = e.cli("plan", str(out), "--exit-code")
    assert r.code == 0, r.output
    assert "No changes" in r.stdout
    assert e.cli("apply", str(out), "--yes").code == 0
    graph = e.bf.state.integration_by_name("Microsoft_Graph")
    assert graph is not None
    provider = e.bf.state.provider_for(graph.id)
    assert provider is not None and provider.client_secret == canary("client")  # the placeholder kept it


def test_import_needs_recipients(denv: Env, tmp_path: Path) -> None:
    r = denv.cli("import", "-o", str(tmp_path / "x"))
    assert r.code == 2 and "--age" in r.stderr


def _write_bundle(e: Env, tmp_path: Path, sealed: bool) -> Path:
    result = load(str(e.root))
    m = manifest(
        result.catalog,
        SecretOpener(result.root, result.catalog, sops.make_keyring(sops.parse_identities(e.identity)))
        if sealed
        else None,
    )
    bundle = tmp_path / ("sealed" if sealed else "redacted")
    bundle.mkdir()
    doc = sops.encrypt_document(m, recipients=[e.recipient]) if sealed else m
    (bundle / "deploy.json").write_text(sops.dump_json(doc))
    return bundle


def test_plan_from_sealed_bundle(denv: Env, tmp_path: Path) -> None:
    e = denv
    bundle = _write_bundle(e, tmp_path, sealed=True)
    assert canary("default") not in (bundle / "deploy.json").read_text()
    r = e.cli("apply", str(bundle), "--yes")
    assert r.code == 0, r.output
    assert e.cli("plan", str(e.root), "--exit-code").code == 0
    no_leaks(r.output, e)


def test_redacted_bundle_refused(denv: Env, tmp_path: Path) -> None:
    e = denv
    bundle = _write_bundle(e, tmp_path, sealed=False)
    assert json.loads((bundle / "deploy.json").read_text())["secrets"] == "redacted"
    r = e.cli("plan", str(bundle))
    assert r.code == 2 and "redacted" in r.stderr


def test_manifest_is_deterministic(denv: Env) -> None:
    result = load(str(denv.root))
    a = manifest(result.catalog, None)
    b = manifest(load(str(denv.root)).catalog, None)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    halo = next(i for i in a["integrations"] if i["name"] == "HaloPSA")
    assert halo["defaults"]["api_key"] == "<redacted>"
    assert halo["mappings"]["contoso"]["organization_id"] == "3f0c1d2e-0000-4000-8000-000000000001"
    assert a["organizations"][0] == {"name": "contoso", "id": "3f0c1d2e-0000-4000-8000-000000000001"}


def test_compiled_sealed_bundle_plans_and_applies(denv: Env, tmp_path: Path) -> None:
    e = denv
    bundle = tmp_path / "bundle"
    r = e.cli("compile", str(e.root), "-o", str(bundle), "--recipient", e.recipient)
    assert r.code == 0, r.output
    assert (bundle / "deploy.json").exists() and canary("default") not in (bundle / "deploy.json").read_text()
    r = e.cli("apply", str(bundle), "--yes")
    assert r.code == 0, r.output
    assert e.cli("plan", str(e.root), "--exit-code").code == 0
    r = e.cli("publish", str(bundle), "--to", str(tmp_path / "rt"))
    assert r.code == 0, r.output
