"""`plan -o FILE` then `apply FILE`: exactly what was reviewed, or a refusal that says why."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

from support import run_cli

from .deploy_support import CONTOSO, TOKEN, Env, canary, no_leaks

HALO_FILE = "integrations/HaloPSA/integration.yaml"


def _save(e: Env, out: Path, *extra: str) -> dict[str, Any]:
    r = e.cli("plan", str(e.root), "-o", str(out), *extra)
    assert r.code == 0, r.output
    assert f"plan saved to {out}" in r.stderr
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def _refused(e: Env, out: Path, why: str) -> None:
    """`apply OUT` exits 2 saying WHY, and sends no write to Bifrost."""
    e.bf.reset_requests()
    r = e.cli("apply", str(out), "--yes")
    assert r.code == 2, r.output
    assert why in r.stderr
    no_leaks(r.output, e)
    assert [x for x in e.bf.requests if x.method != "GET"] == []


def test_apply_file_performs_the_saved_operations(denv: Env, tmp_path: Path) -> None:
    e = denv
    out = tmp_path / "plan.json"
    doc = _save(e, out)
    assert doc["kind"] == "bifrost-gitops/plan" and doc["format"] == 1
    titles = [f"{o['action']} {o['resource']} {o['address']}" for o in doc["ops"]]
    assert "create integration HaloPSA" in titles and "create mapping HaloPSA/contoso" in titles
    r = e.cli("apply", str(out), "--yes", "--format", "json")
    assert r.code == 0, r.output
    no_leaks(r.output, e)
    done = json.loads(r.stdout)["results"]
    assert [{k: v for k, v in x.items() if k not in ("status", "message")} for x in done] == doc["ops"]
    assert {x["status"] for x in done} == {"ok"}
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None and e.bf.state.defaults(halo.id)["api_key"] == canary("default")
    assert e.bf.state.overrides(halo.id, CONTOSO) == {"page_size": 50, "region": "eu"}
    assert e.cli("plan", str(e.root), "--exit-code").code == 0  # nothing left to do
    _refused(e, out, "the live Bifrost changed since this plan was made")  # applied already


def test_the_file_is_private_and_holds_no_secret(denv: Env, tmp_path: Path) -> None:
    e = denv
    out = tmp_path / "plan.json"
    _save(e, out, "--rotate-oauth-secrets")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    assert TOKEN not in text and "CANARY" not in text
    no_leaks(text, e)
    assert '"secret": true' in text  # secrets are named, as set / changed, never given


def test_a_repository_change_after_planning_is_refused(denv: Env, tmp_path: Path) -> None:
    e = denv
    out = tmp_path / "plan.json"
    _save(e, out)
    e.edit(HALO_FILE, lambda d: d.update(default_entity_id="7"))
    _refused(e, out, "the bundle or repository changed since this plan was made: plan again")


def test_a_secret_change_after_planning_is_refused(denv: Env, tmp_path: Path) -> None:
    """The operations read the same ("api_key: set (secret)"); the value does not."""
    e = denv
    out = tmp_path / "plan.json"
    _save(e, out)
    e.seal(HALO_FILE, ["defaults", "secrets"], {"api_key": canary("other")})
    _refused(e, out, "the bundle or repository changed")


def test_live_drift_after_planning_is_refused(denv: Env, tmp_path: Path) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.edit(HALO_FILE, lambda d: d.update(default_entity_id="7"))
    out = tmp_path / "plan.json"
    _save(e, out)
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None
    e.bf.state.save_config(halo.id, CONTOSO, {"page_size": 99}, "someone")  # a change in the UI
    _refused(e, out, "the live Bifrost changed since this plan was made: plan again and review")


def test_an_edited_or_foreign_file_is_refused(denv: Env, tmp_path: Path) -> None:
    e = denv
    out = tmp_path / "plan.json"
    doc = _save(e, out)
    doc["ops"] = doc["ops"][:1]  # a hand edit: drop every operation but one
    out.write_text(json.dumps(doc), encoding="utf-8")
    r = e.cli("apply", str(out), "--yes")
    assert r.code == 2 and "the saved plan was edited after it was written" in r.stderr, r.output
    doc["tool_version"] = "0.0.9"
    out.write_text(json.dumps(doc), encoding="utf-8")
    r = e.cli("apply", str(out), "--yes")
    assert r.code == 2 and "made by bifrost-gitops 0.0.9" in r.stderr, r.output
    out.write_text("not json", encoding="utf-8")
    r = e.cli("apply", str(out), "--yes")
    assert r.code == 2 and "not a saved plan" in r.stderr, r.output
    assert e.bf.state.integration_by_name("HaloPSA") is None
    assert "Traceback" not in r.output


def test_operations_forged_with_a_valid_checksum_are_refused(denv: Env, tmp_path: Path) -> None:
    """The checksum only catches careless edits: the operations themselves must still be the
    ones a fresh plan from the same inputs makes, or nothing is sent."""
    from bifrost_gitops.deploy import saved

    e = denv
    out = tmp_path / "plan.json"
    doc = _save(e, out)
    doc["ops"] = doc["ops"][:1]
    doc["sha256"] = saved._checksum({k: v for k, v in doc.items() if k != "sha256"})
    out.write_text(json.dumps(doc), encoding="utf-8")
    _refused(e, out, "the operations differ from the saved plan: plan again and review")
    assert e.bf.state.integration_by_name("HaloPSA") is None


def test_a_saved_plan_takes_no_plan_options(denv: Env, tmp_path: Path) -> None:
    e = denv
    out = tmp_path / "plan.json"
    _save(e, out)
    r = e.cli("apply", str(out), "--yes", "--prune")
    assert r.code == 2 and "a saved plan carries its own options" in r.stderr, r.output


def test_apply_file_in_another_checkout_of_the_same_repository(denv: Env, tmp_path: Path) -> None:
    """A CI job plans in one checkout and applies in another: the source path is kept as given."""
    e = denv
    out = tmp_path / "plan.json"
    r = run_cli("plan", ".", "-o", str(out), cwd=e.root, env=e.env(), timeout=120)
    assert r.code == 0, r.output
    other = tmp_path / "checkout2"
    shutil.copytree(e.root, other)
    r = run_cli("apply", str(out), "--yes", cwd=other, env=e.env(), timeout=120)
    assert r.code == 0, r.output
    assert e.bf.state.integration_by_name("HaloPSA") is not None
