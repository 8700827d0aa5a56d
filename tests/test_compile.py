"""`compile`: the bundle on disk, end to end, with real keys, a real git repository and real sops.

The repository is test_resolve's (real sops-encrypted secrets holding canaries). HOME and
XDG_CONFIG_HOME live in tmp_path and no SOPS_* variable is set but the ones a test sets.
Every CLI run goes through ``compile_`` / ``run``, which assert that no secret value reaches
stdout or stderr, whatever the mode or outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess as sp
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops import bundle, model, sops
from bifrost_gitops.sops.binary import find_sops
from support import API, ROOT, Run, run_cli
from test_resolve import (
    HALO_CONTOSO,
    HALO_FABRIKAM,
    ORG_IDS,
    SECRETS,
    build_repo,
    isolated,  # noqa: F401  (fixture)
)
from test_resolve import NEEDLES as REPO_NEEDLES

pytestmark = pytest.mark.usefixtures("isolated")

SOPS_BIN = find_sops() or ""
ORGS = ["contoso", "fabrikam", "northwind", "tailspin"]
BUNDLE_SCHEMA = json.loads((ROOT / "schemas" / "bundle.schema.json").read_text())

#: the runtime's key (sealed bundles), distinct from the repository's key
RUNTIME = pyrage.x25519.Identity.generate()
RUNTIME_RECIPIENT = str(RUNTIME.to_public())
NEEDLES = [*REPO_NEEDLES, str(RUNTIME)]


@pytest.fixture
def runtime_key(tmp_path: Path) -> Path:
    path = tmp_path / "runtime-key.txt"
    path.write_text(f"# runtime\n{RUNTIME}\n")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repo(tmp_path / "repo")


def no_secret(run: Run) -> Run:
    for needle in NEEDLES:
        assert needle not in run.stdout, f"secret on stdout: {run.stdout}"
        assert needle not in run.stderr, f"secret on stderr: {run.stderr}"
    assert "Traceback" not in run.output
    return run


def compile_(repo: Path, out: Path, *args: str, **kw: Any) -> Run:
    return no_secret(run_cli("compile", str(repo), "-o", str(out), *args, **kw))


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under OUT by relative path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def git_commit(root: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "repo"]):
        sp.run(["git", "-C", str(root), *cmd], check=True, env=env, capture_output=True)
    return sp.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def org_file(out: Path, org: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "orgs" / f"{org}.json").read_text())
    return doc


def sops_decrypt(path: Path, key: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env["SOPS_AGE_KEY_FILE"] = str(key)
    proc = sp.run([SOPS_BIN, "--decrypt", str(path)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


needs_sops = pytest.mark.skipif(not SOPS_BIN, reason="the sops binary is not installed")


# --- plain bundle: layout, index, values ---------------------------------------------------


def test_plain_bundle_layout_index_and_hashes(repo: Path, tmp_path: Path) -> None:
    commit = git_commit(repo)
    out = tmp_path / "bundle"
    run = compile_(repo, out, "--secrets", "plain")
    assert run.code == 0, run
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == 1
    assert index["kind"] == "bifrost-gitops/bundle"
    assert index["secrets"] == "plain"
    assert index["source"] == {"commit": commit, "dirty": False}
    assert sorted(index["orgs"]) == ORGS
    assert index["orgs"]["contoso"]["id"] == ORG_IDS["contoso"]
    assert index["orgs"]["fabrikam"]["id"] is None
    files = snapshot(out)
    assert sorted(files) == sorted(
        ["index.json", "global.json", "deploy.json", *(f"orgs/{o}.json" for o in ORGS)]
    )
    special = {"global": "global.json", "deploy": "deploy.json"}
    for name, entry in [*index["orgs"].items(), ("global", index["global"]), ("deploy", index["deploy"])]:
        assert entry["file"] == special.get(name, f"orgs/{name}.json")
        assert entry["sha256"] == hashlib.sha256(files[entry["file"]]).hexdigest()
    for p in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), f"{p}: {oct(mode)}"


def test_not_a_git_repository_has_no_commit(repo: Path, tmp_path: Path) -> None:
    assert compile_(repo, tmp_path / "b", "--secrets", "redact").code == 0
    assert json.loads((tmp_path / "b" / "index.json").read_text())["source"] == {
        "commit": None,
        "dirty": False,
    }


def test_uncommitted_changes_mark_the_source_dirty(repo: Path, tmp_path: Path) -> None:
    commit = git_commit(repo)
    text = (repo / HALO_FABRIKAM).read_text()
    (repo / HALO_FABRIKAM).write_text(text.replace("region: us", "region: eu"))
    assert compile_(repo, tmp_path / "b", "--secrets", "redact").code == 0
    source = json.loads((tmp_path / "b" / "index.json").read_text())["source"]
    assert source == {"commit": commit, "dirty": True}


@pytest.mark.parametrize("target", ["repo", "parent", "folder"])
def test_compile_never_replaces_a_folder_that_is_not_a_bundle(
    repo: Path, tmp_path: Path, target: str
) -> None:
    """The swap replaces the output folder whole: pointing -o at the repository must not wipe it."""
    out = {"repo": repo, "parent": repo.parent, "folder": tmp_path / "notes"}[target]
    out.mkdir(exist_ok=True)
    (out / "keep.txt").write_text("precious")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    run = compile_(repo, out, "--secrets", "redact")
    assert run.code == 2 and "not empty and holds no bundle" in run.stderr, run
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_bad_recipient_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    run = compile_(repo, tmp_path / "b", "--recipient", "age1bogus")
    assert run.code == 2 and "age1bogus" in run.stderr and "K005" not in run.stdout + run.stderr, run
    assert not (tmp_path / "b").exists()


def test_plain_values_are_bifrost_integration_data(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "plain").code == 0
    contoso = org_file(out, "contoso")
    assert contoso["organization"] == {
        "name": "contoso", "id": ORG_IDS["contoso"], "display_name": "Contoso Ltd",
    }  # fmt: skip
    halo = contoso["integrations"]["HaloPSA"]
    assert halo == {
        "integration_id": "11111111-2222-4333-8444-555555555555",
        "entity_id": "12",
        "entity_name": "Contoso in Halo",
        "config": {
            "url": "https://halo.example.com",
            "page_size": 50,
            "verbose": False,
            "extra": {"nested": {"z": 3}},
            "region": "eu",
            "tenant": "msp",
            "api_key": SECRETS["halo-contoso-api-key"],
            "pin": SECRETS["halo-contoso-pin"],
        },
        "config_secret_keys": ["api_key", "pin"],
        "oauth": {
            "connection_name": "HaloPSA",
            "client_id": "halo-client",
            "client_secret": SECRETS["halo-inline-client-secret"],
            "authorization_url": "https://halo.example.com/authorize",
            "token_url": "https://halo.example.com/12/token",
            "scopes": ["all"],
            "access_token": None,
            "refresh_token": SECRETS["halo-contoso-refresh"],
            "expires_at": SECRETS["halo-contoso-expires"],
        },
    }
    graph = contoso["integrations"]["Graph"]["oauth"]
    assert graph["token_url"] == "https://login.example.com/tenant-contoso/oauth2/v2.0/token"
    assert graph["client_secret"] == SECRETS["ms-client-secret"]
    assert graph["access_token"] == SECRETS["ms-access-token"]

    northwind = org_file(out, "northwind")["integrations"]
    assert northwind["HaloPSA"]["entity_id"] == "halo-default-entity"
    assert northwind["HaloPSA"]["entity_name"] is None
    assert northwind["HaloPSA"]["config"]["api_key"] == SECRETS["halo-default-api-key"]
    assert northwind["HaloPSA"]["config"]["page_size"] == 100
    assert northwind["HaloPSA"]["oauth"]["refresh_token"] == SECRETS["halo-provider-refresh"]
    assert northwind["Graph"]["entity_id"] == "partner-tenant"
    assert northwind["Ninja"]["entity_id"] is None
    assert northwind["Ninja"]["oauth"]["token_url"] == "https://{entity_id}.ninja.example.com/oauth/token"
    assert northwind["Docs"]["oauth"] is None
    tailspin = org_file(out, "tailspin")["integrations"]
    assert tailspin["HaloPSA"]["entity_id"] == "halo-default-entity"
    assert tailspin["Docs"]["entity_id"] is None
    glob = json.loads((out / "global.json").read_text())
    assert glob["scope"] == "global"
    assert glob["integrations"]["HaloPSA"]["config"] == northwind["HaloPSA"]["config"]


@pytest.mark.parametrize("mode", ["plain", "redact"])
def test_every_bundle_file_matches_the_bundle_schema(repo: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", mode).code == 0
    jsonschema.Draft202012Validator.check_schema(BUNDLE_SCHEMA)
    validator = jsonschema.Draft202012Validator(BUNDLE_SCHEMA)
    defs = BUNDLE_SCHEMA["$defs"]
    for rel, data in snapshot(out).items():
        if rel == "deploy.json":  # the deploy manifest has its own format (docs/deploy.md)
            continue
        doc = json.loads(data)
        validator.validate(doc)
        model.BundleFile.model_validate(doc)  # the pydantic model agrees
        kind = "IndexFile" if rel == "index.json" else "GlobalFile" if rel == "global.json" else "OrgFile"
        jsonschema.Draft202012Validator({"$defs": defs, "$ref": f"#/$defs/{kind}"}).validate(doc)


def test_bundle_schema_rejects_unknown_fields(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "redact").code == 0
    validator = jsonschema.Draft202012Validator(BUNDLE_SCHEMA)
    doc = org_file(out, "contoso")
    doc["integrations"]["HaloPSA"]["surprise"] = 1
    assert not validator.is_valid(doc)
    index = json.loads((out / "index.json").read_text())
    index["orgs"]["contoso"]["sha256"] = "nope"
    assert not validator.is_valid(index)


def test_schema_command_prints_the_bundle_schema() -> None:
    run = run_cli("schema", "bundle")
    assert run.code == 0
    assert json.loads(run.stdout) == BUNDLE_SCHEMA


# --- validation first: nothing written -----------------------------------------------------


BROKEN = {HALO_FABRIKAM: API + "kind: Mapping\nintegration: HaloPSA\norganization: fabrikam\nentity_id: '13'\nconfig: {page_size: many}\n"}  # fmt: skip


@pytest.mark.parametrize("mode", ["seal", "plain", "redact"])
def test_validation_errors_exit_1_and_write_nothing(tmp_path: Path, mode: str, runtime_key: Path) -> None:
    repo = build_repo(tmp_path / "repo", BROKEN)
    out = tmp_path / "bundle"
    run = compile_(repo, out, "--secrets", mode, "--recipient", RUNTIME_RECIPIENT)
    assert run.code == 1
    assert HALO_FABRIKAM in run.stdout
    assert "not compiled" in run.stderr
    assert not out.exists()
    assert siblings(out) == []


def test_validation_errors_leave_the_previous_bundle_untouched(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "plain").code == 0
    before = snapshot(out)
    build_repo(repo, BROKEN)
    assert compile_(repo, out, "--secrets", "plain").code == 1
    assert snapshot(out) == before
    assert siblings(out) == []


# --- sealed bundles ------------------------------------------------------------------------


@needs_sops
def test_sealed_files_open_with_real_sops_and_equal_plain(
    repo: Path, tmp_path: Path, runtime_key: Path
) -> None:
    sealed, plain = tmp_path / "sealed", tmp_path / "plain"
    run = compile_(repo, sealed, "--recipient", RUNTIME_RECIPIENT)  # seal is the default
    assert run.code == 0, run
    assert compile_(repo, plain, "--secrets", "plain").code == 0
    index = json.loads((sealed / "index.json").read_text())
    assert index["secrets"] == "seal"
    assert index["recipients"] == [RUNTIME_RECIPIENT]
    files = snapshot(sealed)
    for rel in ["global.json", *(f"orgs/{o}.json" for o in ORGS)]:
        text = files[rel].decode()
        assert not any(n in text for n in NEEDLES), rel
        assert '"sops"' in text and RUNTIME_RECIPIENT in text
        assert sops_decrypt(sealed / rel, runtime_key) == json.loads((plain / rel).read_text())
        entry = index["global"] if rel == "global.json" else index["orgs"][rel[5:-5]]
        assert entry["sha256"] == hashlib.sha256(files[rel]).hexdigest()
    # the index itself is clear and holds no secret either
    assert not any(n in files["index.json"].decode() for n in NEEDLES)


@needs_sops
def test_sealed_bundle_does_not_open_with_the_repository_key(repo: Path, tmp_path: Path) -> None:
    from test_resolve import KEY_FILE

    out = tmp_path / "sealed"
    assert compile_(repo, out, "--recipient", RUNTIME_RECIPIENT).code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env["SOPS_AGE_KEY_FILE"] = str(KEY_FILE)
    proc = sp.run([SOPS_BIN, "--decrypt", str(out / "orgs/contoso.json")], capture_output=True, env=env)
    assert proc.returncode != 0


def test_compiling_sealed_twice_changes_no_byte(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "sealed"
    assert compile_(repo, out, "--recipient", RUNTIME_RECIPIENT).code == 0
    before = snapshot(out)
    run = compile_(repo, out, "--recipient", RUNTIME_RECIPIENT)
    assert run.code == 0
    assert "unchanged" in run.stderr
    assert snapshot(out) == before
    assert siblings(out) == []


@pytest.mark.parametrize("mode", ["seal", "plain", "redact"])
def test_one_org_change_rewrites_exactly_that_org(repo: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", mode, "--recipient", RUNTIME_RECIPIENT).code == 0
    before = snapshot(out)
    text = (repo / HALO_FABRIKAM).read_text()
    (repo / HALO_FABRIKAM).write_text(text.replace("region: us", "region: eu"))
    run = compile_(repo, out, "--secrets", mode, "--recipient", RUNTIME_RECIPIENT)
    assert run.code == 0
    after = snapshot(out)
    changed = sorted(rel for rel in after if after[rel] != before.get(rel))
    assert changed == [
        "deploy.json",
        "index.json",
        "orgs/fabrikam.json",
    ]  # the manifest holds the override too
    assert sorted(after) == sorted(before)


def files_at(out: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under OUT: (inode, modification time, mode)."""
    found = {}
    for p in sorted(out.rglob("*")):
        st = p.lstat()
        if not stat.S_ISDIR(st.st_mode):
            found[p.relative_to(out).as_posix()] = (st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return found


def age(out: Path) -> None:
    """Date every bundle file back, so a rewrite shows in its modification time."""
    for p in out.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.utime(p, ns=(1_000_000_000, 1_000_000_000))


@pytest.mark.parametrize("mode", ["seal", "plain", "redact"])
def test_unchanged_files_keep_their_inode_and_mtime(repo: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "bundle"
    args = ("--secrets", mode, "--recipient", RUNTIME_RECIPIENT)
    assert compile_(repo, out, *args).code == 0
    age(out)
    before, old = files_at(out), snapshot(out)
    (repo / HALO_FABRIKAM).write_text((repo / HALO_FABRIKAM).read_text().replace("region: us", "region: eu"))
    assert compile_(repo, out, *args).code == 0
    after = files_at(out)
    assert sorted(after) == sorted(before)
    rewritten = sorted(rel for rel in after if after[rel][:2] != before[rel][:2])
    assert rewritten == ["deploy.json", "index.json", "orgs/fabrikam.json"]
    assert all(after[rel][1] > 1_000_000_000 for rel in rewritten)
    assert {m for _, _, m in after.values()} == {0o600 if mode == "plain" else 0o644}
    new = snapshot(out)
    assert {rel for rel in new if new[rel] != old[rel]} == set(rewritten)
    assert siblings(out) == []


def test_a_file_with_other_mode_or_a_symlink_is_rewritten_not_kept(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "redact").code == 0
    outside = tmp_path / "contoso-copy.json"
    outside.write_bytes((out / "orgs" / "contoso.json").read_bytes())
    (out / "orgs" / "contoso.json").unlink()
    (out / "orgs" / "contoso.json").symlink_to(outside)  # same bytes, through a link
    (out / "global.json").chmod(0o666)  # same bytes, another mode
    age(out)
    before = files_at(out)
    (repo / HALO_FABRIKAM).write_text((repo / HALO_FABRIKAM).read_text().replace("region: us", "region: eu"))
    run = compile_(repo, out, "--secrets", "redact")
    assert run.code == 0
    after = files_at(out)
    assert after["global.json"][2] == 0o644 and after["global.json"][0] != before["global.json"][0]
    assert not (out / "orgs" / "contoso.json").is_symlink()
    assert (out / "orgs" / "contoso.json").read_bytes() == outside.read_bytes()
    assert after["orgs/northwind.json"][:2] == before["orgs/northwind.json"][:2]


def test_new_recipients_reseal_everything(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "sealed"
    assert compile_(repo, out, "--recipient", RUNTIME_RECIPIENT).code == 0
    before = snapshot(out)
    other = str(pyrage.x25519.Identity.generate().to_public())
    assert compile_(repo, out, "--recipient", RUNTIME_RECIPIENT, "--recipient", other).code == 0
    after = snapshot(out)
    assert all(after[rel] != before[rel] for rel in after)
    assert json.loads(after["index.json"])["recipients"] == sorted([RUNTIME_RECIPIENT, other])


@needs_sops
def test_recipient_option_overrides_project_recipients(tmp_path: Path, runtime_key: Path) -> None:
    elsewhere = str(pyrage.x25519.Identity.generate().to_public())
    project = API + f"kind: Project\nbundle:\n  recipients: [{elsewhere}]\n"
    repo = build_repo(tmp_path / "repo", {"bifrost-gitops.yaml": project})
    from_project = tmp_path / "a"
    assert compile_(repo, from_project).code == 0
    assert json.loads((from_project / "index.json").read_text())["recipients"] == [elsewhere]
    overridden = tmp_path / "b"
    assert compile_(repo, overridden, "--recipient", RUNTIME_RECIPIENT).code == 0
    assert json.loads((overridden / "index.json").read_text())["recipients"] == [RUNTIME_RECIPIENT]
    assert elsewhere not in (overridden / "orgs/contoso.json").read_text()
    assert sops_decrypt(overridden / "orgs/contoso.json", runtime_key)["organization"]["name"] == "contoso"


def test_seal_without_any_recipient_exits_2_with_a_hint(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    run = compile_(repo, out)
    assert run.code == 2
    assert "bundle.recipients" in run.stderr and "--recipient" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not out.exists()


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "redact"])
def test_plain_and_redact_are_byte_identical_run_to_run(repo: Path, tmp_path: Path, mode: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert compile_(repo, a, "--secrets", mode).code == 0
    first = snapshot(a)
    assert compile_(repo, a, "--secrets", mode).code == 0
    assert snapshot(a) == first
    # a fresh folder, in a separate process
    run = compile_(repo, b, "--secrets", mode, subprocess=True, env={"SOPS_AGE_KEY_FILE": os.environ["SOPS_AGE_KEY_FILE"], "HOME": os.environ["HOME"]})  # fmt: skip
    assert run.code == 0, run
    assert snapshot(b) == first
    for data in first.values():
        assert data.endswith(b"\n")


# --- keys: redact needs none; seal/plain need them -----------------------------------------


def test_redact_needs_no_key_and_holds_no_secret(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    out = tmp_path / "bundle"
    run = compile_(repo, out, "--secrets", "redact")
    assert run.code == 0, run
    files = snapshot(out)
    for rel, data in files.items():
        assert not any(n in data.decode() for n in NEEDLES), rel
        if rel != "index.json":
            assert stat.S_IMODE((out / rel).stat().st_mode) == 0o644
    halo = org_file(out, "contoso")["integrations"]["HaloPSA"]
    assert halo["config"]["api_key"] == bundle.REDACTED
    assert halo["config"]["pin"] == bundle.REDACTED
    assert halo["config"]["page_size"] == 50
    assert halo["oauth"]["client_secret"] == bundle.REDACTED
    assert halo["oauth"]["refresh_token"] == bundle.REDACTED
    assert halo["oauth"]["access_token"] is None
    assert json.loads(files["index.json"])["secrets"] == "redact"


@pytest.mark.parametrize("mode", ["seal", "plain"])
def test_missing_key_exits_2_and_writes_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    out = tmp_path / "bundle"
    run = compile_(repo, out, "--secrets", mode, "--recipient", RUNTIME_RECIPIENT)
    assert run.code == 2
    assert "SOPS_AGE_KEY_FILE" in run.stderr
    assert "redact" in run.stderr
    assert not out.exists() and siblings(out) == []


def test_wrong_key_exits_2(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime_key: Path
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(runtime_key))  # opens the bundle, not the repo
    out = tmp_path / "bundle"
    run = compile_(repo, out, "--secrets", "plain")
    assert run.code == 2
    assert not out.exists()


@pytest.mark.parametrize("mode", ["seal", "plain"])
def test_tampered_secret_file_is_refused_by_name(repo: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", mode, "--recipient", RUNTIME_RECIPIENT).code == 0
    before = snapshot(out)
    path = repo / HALO_CONTOSO
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith("api_key: ENC[AES256_GCM,data:"):
            at = line.index("data:") + 5
            lines[i] = line[:at] + ("A" if line[at] != "A" else "B") + line[at + 1 :]
            break
    else:
        raise AssertionError("no api_key ciphertext")
    path.write_text("".join(lines))
    run = compile_(repo, out, "--secrets", mode, "--recipient", RUNTIME_RECIPIENT)
    assert run.code == 1, run
    assert HALO_CONTOSO in run.output
    assert "nothing was written" in run.output
    assert snapshot(out) == before
    assert siblings(out) == []


# --- atomicity -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "redact"])
def test_a_failure_midway_leaves_the_previous_bundle_whole(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    from support import load

    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", mode).code == 0
    before = snapshot(out)
    text = (repo / HALO_FABRIKAM).read_text()
    (repo / HALO_FABRIKAM).write_text(text.replace("region: us", "region: eu"))
    result = load(repo)

    calls = {"n": 0}
    real_fdopen = os.fdopen

    def failing_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 2:  # two changed files written, the unchanged ones linked, by now
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    with pytest.raises(bundle.BundleError, match="No space left"):
        bundle.write(result.catalog, result.root, str(out), mode, keyring=sops.default_keyring())
    assert calls["n"] > 2
    assert snapshot(out) == before
    assert siblings(out) == []
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    bundle.write(result.catalog, result.root, str(out), mode, keyring=sops.default_keyring())
    assert snapshot(out) != before


def test_a_failed_swap_leaves_the_previous_bundle_whole(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support import load

    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "redact").code == 0
    before = snapshot(out)
    (repo / HALO_FABRIKAM).write_text((repo / HALO_FABRIKAM).read_text().replace("region: us", "region: eu"))
    result = load(repo)
    monkeypatch.setattr(bundle, "_exchange", lambda a, b: False)  # no renameat2: the fallback path
    real_rename = os.rename

    def failing_rename(a: Any, b: Any) -> None:
        if os.path.basename(str(a)).startswith(".bundle.new-"):
            raise OSError(5, "I/O error")
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(bundle.BundleError):
        bundle.write(result.catalog, result.root, str(out), "redact")
    monkeypatch.setattr(os, "rename", real_rename)
    assert snapshot(out) == before, "the previous bundle must survive a failed swap"
    assert siblings(out) == []


def test_unwritable_output_exits_2_without_traceback(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    run = compile_(repo, tmp_path / "a-file" / "bundle", "--secrets", "redact")
    assert run.code == 2
    assert "cannot write the bundle" in run.stderr


def test_removed_organization_loses_its_file(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "redact").code == 0
    orgs = (repo / "organizations.yaml").read_text()
    (repo / "organizations.yaml").write_text(
        orgs.replace("  - name: northwind\n    display_name: Northwind (no mapping anywhere)\n", "")
    )
    assert compile_(repo, out, "--secrets", "redact").code == 0
    assert not (out / "orgs/northwind.json").exists()
    assert "northwind" not in json.loads((out / "index.json").read_text())["orgs"]


def test_example_repository_compiles_in_every_mode(tmp_path: Path, runtime_key: Path) -> None:
    example = tmp_path / "example"
    shutil.copytree(ROOT / "examples" / "integrations", example)
    os.environ["SOPS_AGE_KEY_FILE"] = str(example / "TEST-ONLY-age-key.txt")
    for mode in ("seal", "plain", "redact"):
        run = compile_(example, tmp_path / mode, "--secrets", mode)
        assert run.code == 0, run
        assert len(json.loads((tmp_path / mode / "index.json").read_text())["orgs"]) == 5


# --- symlinked output, private temporary folders, a killed run's leftovers ---------------------


def test_output_symlink_keeps_the_link_and_swaps_the_folder_it_points_to(repo: Path, tmp_path: Path) -> None:
    """A runtime reading through the link sees the new bundle; nothing is left beside either."""
    (tmp_path / "bundles").mkdir()
    real = tmp_path / "bundles" / "v1"
    assert compile_(repo, real, "--secrets", "redact").code == 0
    link = tmp_path / "bundle"
    link.symlink_to("bundles/v1")
    before = snapshot(real)
    (repo / HALO_FABRIKAM).write_text((repo / HALO_FABRIKAM).read_text().replace("region: us", "region: eu"))
    run = compile_(repo, link, "--secrets", "redact")
    assert run.code == 0, run
    assert link.is_symlink() and os.readlink(link) == "bundles/v1"
    assert snapshot(real) != before
    assert org_file(link, "fabrikam")["integrations"]["HaloPSA"]["config"]["region"] == "eu"
    assert siblings(link) == [] and siblings(real) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "bundles", "repo"]
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == ["v1"]


def test_a_dangling_output_symlink_gets_its_folder_created(repo: Path, tmp_path: Path) -> None:
    link = tmp_path / "bundle"
    link.symlink_to(tmp_path / "bundles" / "v2")
    assert compile_(repo, link, "--secrets", "redact").code == 0
    assert link.is_symlink() and (tmp_path / "bundles" / "v2" / "index.json").is_file()


@pytest.mark.parametrize("mode", ["plain", "redact"])
def test_the_temporary_folder_is_private_while_it_is_written(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    out = tmp_path / "bundle"
    seen: list[int] = []
    real_fdopen = os.fdopen

    def watching_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        seen.extend(stat.S_IMODE((tmp_path / n).stat().st_mode) for n in siblings(out))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", watching_fdopen)
    from support import load

    result = load(repo)
    bundle.write(result.catalog, result.root, str(out), mode, keyring=sops.default_keyring())
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    assert len(seen) >= 7 and set(seen) == {0o700}, [oct(m) for m in seen]
    assert stat.S_IMODE(out.stat().st_mode) == (0o700 if mode == "plain" else 0o755)


#: Runs the CLI and SIGKILLs itself after two changed bundle files are written (the unchanged ones linked):
#: a real kill -9 mid-write, at a point that does not depend on timing.
KILLED_MIDWAY = """
import os, signal, sys
from bifrost_gitops import bundle
from bifrost_gitops.cli import main

real_swap = bundle._swap_in

def swap(out_dir, files, private, **kw):
    real_fdopen, written = os.fdopen, []

    def fdopen(fd, *args, **kwargs):
        written.append(fd)
        if len(written) > 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_fdopen(fd, *args, **kwargs)

    os.fdopen = fdopen
    real_swap(out_dir, files, private, **kw)

bundle._swap_in = swap
main(["compile", *sys.argv[1:]])
"""


def test_a_compile_killed_midway_leaves_the_bundle_whole_and_the_next_run_cleans_up(
    repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "plain").code == 0
    before = snapshot(out)
    (repo / HALO_FABRIKAM).write_text((repo / HALO_FABRIKAM).read_text().replace("region: us", "region: eu"))
    killed = sp.run(
        [sys.executable, "-c", KILLED_MIDWAY, str(repo), "-o", str(out), "--secrets", "plain"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr
    assert snapshot(out) == before, "a killed compile must leave the previous bundle whole"
    [leftover] = siblings(out)
    assert leftover.startswith(".bundle.new-")
    assert stat.S_IMODE((tmp_path / leftover).stat().st_mode) == 0o700  # holds clear secrets
    assert len(snapshot(tmp_path / leftover)) >= 3

    assert compile_(repo, out, "--secrets", "plain").code == 0
    assert siblings(out) == []
    assert compile_(repo, tmp_path / "fresh", "--secrets", "plain").code == 0
    assert snapshot(out) == snapshot(tmp_path / "fresh") != before


def test_only_our_unlocked_leftover_folders_are_removed(repo: Path, tmp_path: Path) -> None:
    """Symlinks, files, other names and a folder a running compile holds are left alone."""
    import fcntl

    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", "redact").code == 0
    leftover = tmp_path / ".bundle.new-k1lled_0"
    (leftover / "orgs").mkdir(parents=True)
    (leftover / "orgs" / "contoso.json").write_text("{}")
    leftover.chmod(0o700)
    old = tmp_path / ".bundle.old-k1lled_1"
    old.mkdir()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("precious")
    keep: dict[str, Callable[[Path], object]] = {
        ".bundle.new-symlink0": lambda p: p.symlink_to(precious, target_is_directory=True),
        ".bundle.old-afile000": lambda p: p.write_text("not a folder"),
        ".bundle.new-short": lambda p: p.mkdir(),
        ".bundle.new-toolong00": lambda p: p.mkdir(),
        ".other.new-abcdefgh": lambda p: p.mkdir(),
        "bundle.new-abcdefgh": lambda p: p.mkdir(),
        ".bundle.new-running0": lambda p: p.mkdir(),
    }
    for name, make in keep.items():
        make(tmp_path / name)
    fd = os.open(tmp_path / ".bundle.new-running0", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a compile still writing
        before = snapshot(out)
        assert compile_(repo, out, "--secrets", "redact").code == 0  # nothing changed: no swap
    finally:
        os.close(fd)
    assert snapshot(out) == before
    assert not leftover.exists() and not old.exists()
    assert sorted(n for n in keep if os.path.lexists(tmp_path / n)) == sorted(keep)
    assert (precious / "keep.txt").read_text() == "precious"
