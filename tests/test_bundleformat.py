"""The bundle format's one home: every reader refuses the same index entries and index files,
reading a bundle for `plan` or a workflow loads neither pydantic nor the checks, and files
replaced in place are replaced whole with their mode."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bifrost_gitops import bundle, bundleformat, publish, repo, runtime, sops
from bifrost_gitops.atomic import write_atomic
from support import isolate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "integrations"
KEY = EXAMPLE / "TEST-ONLY-age-key.txt"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example repository compiled with --secrets plain (read-only: copy before altering)."""
    base = tmp_path_factory.mktemp("bundleformat")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")  # module scope: before any test's isolated_home
        mp.setenv("SOPS_AGE_KEY_FILE", str(KEY))
        result = repo.load(str(EXAMPLE))
        assert not result.errors
        bundle.write(result.catalog, result.root, str(base / "b"), "plain", keyring=sops.default_keyring())
    return base / "b"


def _modules_after(code: str) -> dict[str, object]:
    """Run CODE in a fresh interpreter on this source tree; it prints a JSON object."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert isinstance(doc, dict)
    return doc


HEAVY = (
    "heavy = sorted(m for m in ('pydantic', 'bifrost_gitops.catalog', 'bifrost_gitops.checks')"
    " if m in sys.modules)\n"
)


def test_plan_reads_a_bundle_without_pydantic_or_the_checks(plain: Path) -> None:
    doc = _modules_after(
        "import json, sys\n"
        "from bifrost_gitops.deploy.source import load_desired\n"
        f"desired = load_desired({str(plain)!r})\n" + HEAVY + "before = heavy\n"
        "import bifrost_gitops.deploymanifest\n"  # the builder does need them: the probe works
         + HEAVY + "print(json.dumps({'n': len(desired['integrations']), 'before': before, 'after': heavy}))"
    )
    assert doc["n"] == 3  # HaloPSA, Microsoft_Graph, NinjaOne
    assert doc["before"] == []
    assert doc["after"] == ["bifrost_gitops.catalog", "pydantic"]


def test_a_workflow_reads_a_bundle_without_pydantic_or_the_checks(plain: Path) -> None:
    doc = _modules_after(
        "import json, sys\n"
        "from bifrost_gitops.runtime import Bundle, Integrations\n"
        f"halo = Integrations(Bundle({str(plain)!r})).get_sync('HaloPSA', 'contoso')\n"
        + HEAVY
        + "print(json.dumps({'config': halo.config, 'heavy': heavy}))"
    )
    written = json.loads((plain / "orgs" / "contoso.json").read_text())["integrations"]["HaloPSA"]["config"]
    assert doc == {"config": written, "heavy": []}


@pytest.mark.parametrize(
    ("rel", "safe"),
    [
        ("global.json", "global.json"),
        ("orgs/contoso.json", "orgs/contoso.json"),
        ("orgs/./contoso.json", "orgs/contoso.json"),
        ("orgs/..contoso.json", "orgs/..contoso.json"),  # a name starting with dots, inside orgs/
        ("/etc/passwd", None),
        ("../elsewhere.json", None),
        ("orgs/../../elsewhere.json", None),
        ("orgs/../global.json", None),  # stays inside, but publish used to accept it: now neither does
        ("..global.json", None),  # the runtime used to accept it: now neither does
        ("orgs\\..\\..\\elsewhere.json", None),
        ("orgs\\contoso.json", None),  # a separator on other systems: the runtime used to accept it
        ("orgs/con\x00toso.json", None),  # used to end in a traceback (embedded null byte)
        (5, None),
    ],
)
def test_one_entry_path_rule(rel: object, safe: str | None) -> None:
    assert bundleformat.safe_entry(rel) == safe


@pytest.mark.parametrize(
    "rel", ["orgs/../orgs/contoso.json", "../b/orgs/contoso.json", "orgs/con\x00toso.json"]
)
def test_runtime_and_publish_refuse_the_same_entries(plain: Path, tmp_path: Path, rel: str) -> None:
    b = tmp_path / "b"
    shutil.copytree(plain, b)
    index = json.loads((b / "index.json").read_text())
    index["orgs"]["contoso"]["file"] = rel
    (b / "index.json").write_text(json.dumps(index))

    with pytest.raises(runtime.BundleReadError, match=r"entry 'contoso' points outside the bundle"):
        runtime.Integrations(runtime.Bundle(b)).get_sync("HaloPSA", "contoso")
    with pytest.raises(publish.PublishError, match=r"points outside the bundle"):
        publish.verify(str(b))
    assert runtime.Integrations(runtime.Bundle(b)).get_sync("HaloPSA", "fabrikam") is not None


@pytest.mark.parametrize(
    ("index", "problem", "runtime_says", "publish_says"),
    [
        (None, bundleformat.Problem.MISSING, "not found (is ", "not a bundle (index.json: No such file"),
        (b"{", bundleformat.Problem.NOT_JSON, "not valid JSON", "not JSON"),
        (
            b'{"kind": "other"}',
            bundleformat.Problem.NOT_BUNDLE,
            "not a bifrost-gitops bundle index",
            "bundle index",
        ),
        (b"[]", bundleformat.Problem.NOT_BUNDLE, "not a bifrost-gitops bundle index", "bundle index"),
        (
            b'{"kind": "bifrost-gitops/bundle", "format": 2}',
            bundleformat.Problem.FORMAT,
            "bundle format 2 is not supported (this runtime reads 1)",
            None,
        ),
        (
            b'{"kind": "bifrost-gitops/bundle", "format": 1, "secrets": "clear"}',
            bundleformat.Problem.MODE,
            "unknown secrets mode 'clear'",
            None,
        ),
        (
            b'{"kind": "bifrost-gitops/bundle", "format": 1, "secrets": "plain", "orgs": {}}',
            bundleformat.Problem.MALFORMED,
            "malformed (no orgs or global entry)",
            None,
        ),
    ],
)
def test_index_problems_as_each_reader_words_them(
    tmp_path: Path,
    index: bytes | None,
    problem: bundleformat.Problem,
    runtime_says: str,
    publish_says: str | None,
) -> None:
    """The runtime checks the whole index; publish only needs a bundle's index (it copies what
    the index lists, whatever the format): PUBLISH_SAYS None means publish accepts it."""
    if index is not None:
        (tmp_path / "index.json").write_bytes(index)
    with pytest.raises(bundleformat.BadIndex) as caught:
        bundleformat.read_index(str(tmp_path))
    assert caught.value.problem is problem
    with pytest.raises(runtime.BundleReadError) as read:
        runtime.Bundle(tmp_path).organizations()
    assert str(read.value).startswith(f"{tmp_path / 'index.json'}: {runtime_says}")
    if publish_says is None:
        assert publish.verify(str(tmp_path)) == ["index.json"]
    else:
        with pytest.raises(publish.PublishError, match=re.escape(publish_says)):
            publish.verify(str(tmp_path))


def test_peek_index_never_raises(tmp_path: Path) -> None:
    assert bundleformat.peek_index(str(tmp_path)) == {}
    (tmp_path / "index.json").write_bytes(b"\xff\xfe{")
    assert bundleformat.peek_index(str(tmp_path)) == {}
    assert bundleformat.secrets_mode(str(tmp_path)) is None
    (tmp_path / "index.json").write_text('{"secrets": "redact"}')
    assert bundleformat.secrets_mode(str(tmp_path)) == "redact"


# --- the atomic writer ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_write_atomic_replaces_the_file_whole_with_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "f.txt"
    path.write_text("old")
    path.chmod(0o666)
    write_atomic(str(path), b"new\n", mode=mode, prefix=".f-", suffix=".tmp", sync_folder=True)
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["f.txt"]


def test_write_atomic_that_fails_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text("old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(str(path), b"new\n", mode=0o644, prefix=".history.jsonl.", suffix=".tmp")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["history.jsonl"]
