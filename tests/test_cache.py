"""The incremental cache and --jobs: the same findings, bundles and diffs as a cold run, with
only the changed files parsed again; a damaged cache ignored and rebuilt; no decrypted value in
it; two processes sharing it; one job and two giving the same bytes."""

from __future__ import annotations

import hashlib
import marshal
import os
import subprocess as sp
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bifrost_gitops
from bifrost_gitops import cache, parallel, perfile, repo
from support import API, Run, git, run_cli
from test_resolve import NEEDLES, build_repo
from test_resolve import isolated as isolated

BROKEN = {
    # findings of every stage: per file (schema, YAML traps, duplicate keys) and across files
    "integrations/HaloPSA/mappings/contoso.yaml": API
    + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\nentity_id: '1'\n"
    + "config: {url: https://x.example, page_size: many, beta: yes, bogus: 1}\n",
    "integrations/HaloPSA/mappings/nobody.yaml": API
    + "kind: Mapping\nintegration: HaloPSA\norganization: nobody\nentity_id: '2'\n",
    "integrations/HaloPSA/mappings/dupe.yaml": API + "kind: Mapping\nkind: Mapping\n",
    "integrations/Other/integration.yaml": API + "kind: Integration\nname: Other\nconfig_schema: 3\n",
    "notes/readme.yaml": "just: some other yaml\n",
    # valid once its unknown field is dropped: the rules across files still see it (R002)
    "integrations/HaloPSA/mappings/salvaged.yaml": API
    + "kind: Mapping\nintegration: HaloPSA\norganization: ghost\nentity_id: '3'\ncolour: red\n",
}


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files parsed in this process (cache misses), in order."""
    seen: list[str] = []
    real = perfile.analyse

    def spy(rel: str, content: bytes, pack: bool = True) -> Any:
        seen.append(rel)
        return real(rel, content, pack)

    monkeypatch.setattr(perfile, "analyse", spy)
    return seen


def validate(root: Path, *args: str) -> tuple[Run, Run]:
    """validate as text and as json (in process)."""
    return run_cli("validate", str(root), *args), run_cli("validate", str(root), "--format", "json", *args)


def cold(root: Path) -> tuple[Run, Run]:
    return validate(root, "--no-cache")


def yaml_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml") if not p.name.startswith("."))


def cache_files() -> list[Path]:
    return sorted(Path(cache.base_dir()).rglob("*.bin"))


def test_a_warm_run_parses_nothing_and_reports_the_same(
    make_repo: Callable[..., Path], parsed: list[str]
) -> None:
    root = make_repo(BROKEN)
    expected = cold(root)
    assert expected[0].code == 1 and "S001" in expected[0].stdout and "Y002" in expected[0].stdout
    assert "salvaged.yaml:4:15: R002" in expected[0].stdout
    assert not cache_files(), "--no-cache wrote a cache"
    parsed.clear()
    assert validate(root) == expected  # fills the cache
    assert sorted(parsed) == yaml_files(root)  # every file once (the json run already hits)
    parsed.clear()
    assert validate(root) == expected
    assert parsed == [], "a warm run parsed files again"
    assert cache_files() and all(p.stat().st_mode & 0o777 == 0o600 for p in cache_files())


def test_edits_renames_and_deletions_match_a_cold_run(
    make_repo: Callable[..., Path], parsed: list[str]
) -> None:
    root = make_repo(BROKEN)
    validate(root)
    maps = root / "integrations" / "HaloPSA" / "mappings"

    def check(reparsed: list[str]) -> None:
        parsed.clear()
        warm = validate(root)
        assert sorted(set(parsed)) == reparsed
        assert warm == cold(root)

    (maps / "contoso.yaml").write_text((maps / "contoso.yaml").read_text().replace("many", "50"))
    check(["integrations/HaloPSA/mappings/contoso.yaml"])
    (maps / "nobody.yaml").rename(maps / "renamed.yaml")  # same bytes, another path: parsed again
    check(["integrations/HaloPSA/mappings/renamed.yaml"])
    (maps / "dupe.yaml").unlink()
    check([])
    (maps / "contoso.yaml").write_text((maps / "contoso.yaml").read_text().replace("50", "many"))
    check([])  # back to bytes seen before: still in the cache
    assert "page_size" in run_cli("validate", str(root)).stdout


def test_a_changed_sops_yaml_or_project_parses_everything_again(
    make_repo: Callable[..., Path], parsed: list[str]
) -> None:
    root = make_repo(BROKEN)
    validate(root)
    for rel, text in (
        (".sops.yaml", "creation_rules: []\n"),
        ("bifrost-gitops.yaml", API + "kind: Project\n# x\n"),
    ):
        (root / rel).write_text(text)
        expected = cold(root)
        parsed.clear()
        assert validate(root) == expected
        assert sorted(parsed) == yaml_files(root)


def test_a_new_tool_version_parses_everything_and_old_versions_are_dropped(
    make_repo: Callable[..., Path], parsed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(BROKEN)
    expected = validate(root)
    before = {p.parent for p in cache_files()}
    monkeypatch.setattr(bifrost_gitops, "__version__", "99.0.0")
    parsed.clear()
    assert validate(root) == expected
    assert sorted(parsed) == yaml_files(root)
    assert len({p.parent for p in cache_files()} - before) == 1
    for n in range(cache.KEEP_SETTINGS + 2):
        monkeypatch.setattr(bifrost_gitops, "__version__", f"100.{n}")
        validate(root)
    assert len({p.parent for p in cache_files()}) == cache.KEEP_SETTINGS, "old versions pile up"


def _damage(path: Path, how: str) -> None:
    blob = path.read_bytes()
    if how == "flipped":
        path.write_bytes(blob[:-5] + bytes([blob[-5] ^ 0xFF]) + blob[-4:])
    elif how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "foreign":
        path.write_bytes(b"\x00not a cache at all\n" * 10)
    elif how == "wrong shape under real keys":  # every entry is checked as it is used
        head = len(cache.MAGIC) + 32
        entries = marshal.loads(blob[head:])
        payload = marshal.dumps({k: ("x", 1) if i % 2 else [] for i, k in enumerate(entries)})
        path.write_bytes(blob[: len(cache.MAGIC)] + hashlib.sha256(payload).digest() + payload)
    else:  # a well-formed file of the wrong shape: checksum right, content not ours
        payload = marshal.dumps({b"k" * 32: ("x",) * 8, "key": [1, 2]})
        path.write_bytes(blob[: len(cache.MAGIC)] + hashlib.sha256(payload).digest() + payload)


@pytest.mark.parametrize(
    "how", ["flipped", "truncated", "foreign", "wrong shape", "wrong shape under real keys"]
)
def test_a_damaged_cache_file_is_ignored_and_rebuilt(
    make_repo: Callable[..., Path], parsed: list[str], how: str
) -> None:
    root = make_repo(BROKEN)
    expected = validate(root)
    shards = cache_files()
    for shard in shards:
        _damage(shard, how)
    parsed.clear()
    assert validate(root) == expected
    assert sorted(parsed) == yaml_files(root), "a damaged shard was trusted"
    parsed.clear()
    assert validate(root) == expected and parsed == [], "the damaged shards were not rewritten"


def test_the_cache_lives_outside_the_repository_and_can_be_turned_off(
    make_repo: Callable[..., Path], parsed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(BROKEN)
    monkeypatch.setenv("BIFROST_GITOPS_NO_CACHE", "1")
    validate(root)
    assert not cache_files()
    monkeypatch.delenv("BIFROST_GITOPS_NO_CACHE")
    validate(root)
    assert cache_files() and all(root not in p.parents for p in cache_files())
    assert str(cache_files()[0]).startswith(os.environ["XDG_CACHE_HOME"])


@pytest.fixture
def secret_repo(tmp_path: Path, isolated: Path) -> Path:
    return build_repo(tmp_path / "repo")


def test_no_decrypted_value_ever_reaches_the_cache(secret_repo: Path, tmp_path: Path) -> None:
    """Every command that decrypts, run with the cache on: the canaries are only in ciphertext."""
    out = tmp_path / "bundle"
    assert run_cli("validate", str(secret_repo), "--decrypt").code == 0
    assert run_cli("compile", str(secret_repo), "-o", str(out), "--secrets", "plain").code == 0
    assert any(n in (out / "orgs" / "contoso.json").read_text() for n in NEEDLES), "the canary test is blind"
    blobs = [p.read_bytes() for p in cache_files()]
    assert blobs and any(b"ENC[AES256_GCM" in b for b in blobs), "encrypted files were not cached"
    for needle in NEEDLES:
        assert not any(needle.encode() in b for b in blobs), f"{needle} in the cache"


def test_compile_bundles_are_byte_identical_warm_and_cold(secret_repo: Path, tmp_path: Path) -> None:
    def bundle(name: str, *args: str) -> dict[str, bytes]:
        out = tmp_path / name
        assert run_cli("compile", str(secret_repo), "-o", str(out), "--secrets", "plain", *args).code == 0
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    cold_bundle = bundle("cold", "--no-cache")
    assert bundle("fill") == cold_bundle
    assert bundle("warm") == cold_bundle


def test_diff_and_rev_use_the_cache_and_match_a_cold_run(
    make_repo: Callable[..., Path], parsed: list[str]
) -> None:
    root = make_repo(BROKEN)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    maps = root / "integrations" / "HaloPSA" / "mappings"
    (maps / "contoso.yaml").write_text((maps / "contoso.yaml").read_text().replace("many", "75"))
    args = ("diff", str(root), "--base", "HEAD", "--format", "json")
    expected = run_cli(*args, "--no-cache")
    assert '"page_size"' in expected.stdout
    assert run_cli(*args) == expected
    parsed.clear()
    assert run_cli(*args) == expected
    assert parsed == []
    rev = run_cli("validate", str(root), "--rev", "HEAD", "--no-cache")
    assert run_cli("validate", str(root), "--rev", "HEAD") == rev
    parsed.clear()
    assert run_cli("validate", str(root), "--rev", "HEAD") == rev and parsed == []


def test_two_processes_sharing_the_cache(make_repo: Callable[..., Path]) -> None:
    root = make_repo({**BROKEN, **{f"more/m{i}.yaml": f"other: {i}\n" for i in range(200)}})
    expected = run_cli("validate", str(root), "--no-cache").stdout
    cmd = [sys.executable, "-m", "bifrost_gitops", "validate", str(root)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [sp.Popen(cmd, stdout=sp.PIPE, stderr=sp.PIPE, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [o[0].decode() for o in outs] == [expected] * 3, outs
    head = len(cache.MAGIC) + 32
    for shard in cache_files():  # every shard whole: header and checksum hold, no temporary left
        blob = shard.read_bytes()
        assert (
            blob.startswith(cache.MAGIC)
            and hashlib.sha256(blob[head:]).digest() == blob[len(cache.MAGIC) : head]
        )
    assert not [p for p in Path(cache.base_dir()).rglob("*") if p.name.endswith(".tmp")]
    assert run_cli("validate", str(root)).stdout == expected


# --- --jobs -----------------------------------------------------------------------------------

WORKERS: list[int] = []


def record_work(read: parallel.Read | None, store: cache.Cache | None, chunk: list[parallel.Item]) -> bytes:
    """parallel._work, noting which process ran it (in a file: it runs in a worker)."""
    Path(os.environ["WORKER_LOG"], str(os.getpid())).touch()
    return REAL_WORK(read, store, chunk)


REAL_WORK = parallel._work


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Workers for any batch (not only big ones), each noting its pid in the folder returned."""
    log = tmp_path / "workers"
    log.mkdir()
    monkeypatch.setenv("WORKER_LOG", str(log))
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "_work", record_work)
    yield log


def test_jobs_two_gives_the_same_findings_as_one(make_repo: Callable[..., Path], workers: Path) -> None:
    root = make_repo(BROKEN)
    one = validate(root, "--no-cache", "--jobs", "1")
    assert not list(workers.iterdir())
    two = validate(root, "--no-cache", "--jobs", "2")
    assert two == one and one[0].code == 1
    pids = {int(p.name) for p in workers.iterdir()}
    assert pids and os.getpid() not in pids, "no worker process ran"


def test_jobs_two_gives_the_same_bundle_bytes(secret_repo: Path, tmp_path: Path, workers: Path) -> None:
    def bundle(name: str, jobs: str) -> dict[str, bytes]:
        out = tmp_path / name
        assert (
            run_cli(
                "compile", str(secret_repo), "-o", str(out), "--secrets", "redact", "--no-cache", "-j", jobs
            ).code
            == 0
        )
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    assert bundle("one", "1") == bundle("two", "2")
    assert list(workers.iterdir())


def test_no_worker_processes_falls_back_to_this_process(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(BROKEN)
    expected = cold(root)

    tried: list[int] = []

    def no_fork() -> int:
        tried.append(1)
        raise BlockingIOError(11, "Resource temporarily unavailable")  # out of processes

    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(os, "fork", no_fork)
    assert validate(root, "--no-cache", "--jobs", "2") == expected
    assert tried, "no worker was asked for"


def test_jobs_default_is_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.ENV_JOBS, "3")
    assert parallel.default_jobs() == 3
    monkeypatch.delenv(parallel.ENV_JOBS)
    assert parallel.default_jobs() == parallel.usable_cores() >= 1
    assert run_cli("validate", "--jobs", "0").code == 2


def test_results_round_trip_as_plain_data(make_repo: Callable[..., Path]) -> None:
    root = make_repo(BROKEN)
    for rel in ("integrations/HaloPSA/mappings/contoso.yaml", "organizations.yaml", "notes/readme.yaml"):
        result, doc = perfile.analyse(rel, (root / rel).read_bytes())
        back = perfile.FileResult(*marshal.loads(marshal.dumps(tuple(result))))
        assert back == result
        again = perfile.rebuild(back)
        assert (again is None) == (doc is None)
        if doc is not None and again is not None:
            assert again.model == doc.model and again.doc.values == doc.doc.values


def test_unchanged_files_are_not_even_read_and_a_same_size_edit_is_seen(
    make_repo: Callable[..., Path], parsed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bifrost_gitops import repo

    monkeypatch.setattr(cache, "RACY_NS", 0)  # the test's files are all seconds old at most
    root = make_repo(BROKEN)
    expected = validate(root)
    read: list[str] = []
    real = repo.WorkTree.content

    def spy(self: repo.WorkTree, rel: str) -> Any:
        read.append(rel)
        return real(self, rel)

    monkeypatch.setattr(repo.WorkTree, "content", spy)
    assert validate(root) == expected
    assert set(read) <= {"bifrost-gitops.yaml", ".sops.yaml"}, read  # the settings, read every time
    target = root / "integrations" / "HaloPSA" / "mappings" / "contoso.yaml"
    before = target.stat()
    target.write_text(target.read_text().replace("many", "1234"))  # same size, same mtime
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    read.clear()
    parsed.clear()
    assert validate(root) == cold(root) != expected
    assert "integrations/HaloPSA/mappings/contoso.yaml" in read


def test_a_cache_that_cannot_be_written_is_no_error(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = make_repo(BROKEN)
    expected = cold(root)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    monkeypatch.setenv(cache.ENV_DIR, str(blocker / "cache"))
    assert validate(root) == expected
    assert validate(root) == expected


def test_filling_the_cache_never_waits_on_the_disk(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cache files are not fsynced (a torn one fails its checksum and is rebuilt): filling the
    cache of thousands of files must not cost one disk flush per shard."""
    root = make_repo(BROKEN)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    validate(root)
    assert cache_files() and synced == []


def test_staged_and_rev_read_only_the_blobs_the_cache_has_not_seen(
    make_repo: Callable[..., Path], parsed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-commit hook checks the index (`validate --staged`): git names each file's bytes
    (its blob), so an unchanged file is neither read from git nor parsed again."""
    from bifrost_gitops import gitrev

    root = make_repo()  # no findings: a file with one is read for its suppression comments
    git(root, "init", "-q")
    git(root, "add", "-A")
    expected = run_cli("validate", str(root), "--staged", "--no-cache")
    assert run_cli("validate", str(root), "--staged") == expected
    read: list[str] = []
    real = gitrev._Blobs._read

    def spy(self: gitrev._Blobs, shas: list[str]) -> dict[str, bytes]:
        read.extend(shas)
        return real(self, shas)

    monkeypatch.setattr(gitrev._Blobs, "_read", spy)
    parsed.clear()
    assert run_cli("validate", str(root), "--staged") == expected
    yaml_blobs = {line.split()[1] for line in git(root, "ls-files", "-s", "integrations").splitlines()}
    assert parsed == [] and not yaml_blobs & set(read), "unchanged blobs were read again"
    contoso = root / "integrations" / "HaloPSA" / "mappings" / "contoso.yaml"
    contoso.write_text(contoso.read_text().replace("page_size: 50", "page_size: many"))
    git(root, "add", "-A")
    read.clear()
    staged = run_cli("validate", str(root), "--staged")
    yaml_blobs = {line.split()[1] for line in git(root, "ls-files", "-s", "integrations").splitlines()}
    changed = git(root, "ls-files", "-s", str(contoso)).split()[1]
    assert parsed == ["integrations/HaloPSA/mappings/contoso.yaml"]
    assert yaml_blobs & set(read) == {changed}
    assert staged == run_cli("validate", str(root), "--staged", "--no-cache") != expected


def test_the_cache_key_covers_every_module_that_shapes_a_cached_result() -> None:
    """A cached entry is found by the code digest of the per-file stage: a module that stage
    imports (whose edit could change a finding, a hint or a fact) must be part of it."""
    import ast

    package = Path(bifrost_gitops.__file__).parent
    harmless = {"atomic", "codedigest", "colour"}  # how results are written or shown, not what they are
    seen: set[str] = set()
    todo = ["perfile", "checks"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found = [node.module] if node.module else [a.name for a in node.names]
                todo += [m for m in found if (package / f"{m}.py").exists()]
    assert seen - harmless <= set(cache._STAGE_MODULES), sorted(seen - harmless - set(cache._STAGE_MODULES))


def test_a_secret_in_the_clear_is_never_copied_into_the_cache(make_repo: Callable[..., Path]) -> None:
    """A secret-typed key under config: (C004) or an unencrypted secrets: block (K002): the
    repository is wrong, but the cache under ~/.cache must not keep a copy of the value that
    outlives the fix (sops --encrypt)."""
    maps = "integrations/HaloPSA/mappings"
    head = API + "kind: Mapping\nintegration: HaloPSA\nentity_id: '7'\n"
    root = make_repo(
        {
            f"{maps}/contoso.yaml": head + "organization: contoso\nconfig: {api_key: canary-config-4471}\n",
            f"{maps}/fabrikam.yaml": head + "organization: fabrikam\nsecrets: {api_key: canary-plain-9203}\n",
        }
    )
    expected = cold(root)
    assert "C004" in expected[0].stdout and "K002" in expected[0].stdout
    assert validate(root) == expected
    assert validate(root) == expected  # warm: from the cache, the same
    blobs = [p.read_bytes() for p in cache_files()]
    assert any(b"url: https://halo.example.com" in b or b"halo.example.com" in b for b in blobs), "blind"
    for canary in (b"canary-config-4471", b"canary-plain-9203"):
        assert not any(canary in b for b in blobs), canary
    # a later stage that asks for such a document gets it from the file, as a cold run does
    warm = repo.load(str(root)).catalog.mappings[("HaloPSA", "contoso")]
    assert not warm.loaded and warm.doc.data["config"] == {"api_key": "canary-config-4471"}
