"""The per-mapping checks kept in the cache (checks.Memo): a warm run gives the findings of a
cold one, byte for byte, whichever input changed (the mapping, its integration's schema, its
provider, an organization's name), and re-checks only the mappings such a change can affect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import cache, checks, diffrun, perfile, repo
from bifrost_gitops.catalog import Catalog, Parsed
from bifrost_gitops.model import Mapping
from support import API, BASE_FILES, git, run_cli

INTEG = "integrations/HaloPSA/integration.yaml"
PROVIDER = "providers/halo.yaml"
FILES = {
    PROVIDER: API
    + "kind: OAuthProvider\nname: Halo\nclient_id: abc\n"
    + "authorization_url: https://halo.example/auth\ntoken_url: https://halo.example/token\n",
    INTEG: BASE_FILES[INTEG] + "oauth: {provider: Halo}\n",
    # no entity id, and its own OAuth account: what the provider's settings decide about
    "integrations/HaloPSA/mappings/fabrikam.yaml": API
    + "kind: Mapping\nintegration: HaloPSA\norganization: fabrikam\nentity_id: ''\noauth: own\n",
}


def _swap(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new))

    return edit


def _delete(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


#: an edit of each kind of input a mapping's checks read, with a finding it adds to a mapping
#: (names are checked on every run: a rename needs no value checked again)
EDITS = {
    "integration schema": (_swap(INTEG, "options: [us, eu, uk]", "options: [us, uk]"), "C003"),
    "integration default": (_swap(INTEG, "url: https://halo.example.com\n", "\n"), "C006"),
    "provider token url": (_swap(PROVIDER, "example/token", "example/{entity_id}/token"), "C008"),
    "provider flow": (_swap(PROVIDER, "authorization_url: https://halo.example/auth\n", ""), "C013"),
    "provider deleted": (_delete(PROVIDER), "C012"),
    "organization renamed": (_swap("organizations.yaml", "- name: contoso", "- name: contoso-ltd"), "R002"),
    "integration renamed": (_swap(INTEG, "name: HaloPSA", "name: Halo2"), "R003"),
    "mapping edited": (
        _swap("integrations/HaloPSA/mappings/contoso.yaml", "region: eu", "region: mars"),
        "C003",
    ),
}


def validate(root: Path, *args: str) -> list[tuple[int, str, str]]:
    """validate's exit code, stdout and stderr as text and as json."""
    return [
        tuple(run_cli("validate", str(root), *fmt, *args))  # type: ignore[misc]
        for fmt in ((), ("--format", "json"))
    ]


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The mappings whose values were checked in this process (not found in the cache)."""
    seen: list[str] = []
    real = checks._check_mapping_values

    def spy(cat: Catalog, p: Parsed[Mapping], *rest: object) -> None:
        seen.append(p.doc.path)
        real(cat, p, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(checks, "_check_mapping_values", spy)
    return seen


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edit_of_any_input_gives_the_findings_of_a_cold_run(
    make_repo: Callable[..., Path], checked: list[str], what: str
) -> None:
    root = make_repo(FILES)
    before = validate(root)
    assert validate(root) == before == validate(root, "--no-cache")
    edit, code = EDITS[what]
    edit(root)
    expected = validate(root, "--no-cache")
    assert f" {code} " in expected[0][1] and f" {code} " not in before[0][1], expected[0][1]
    checked.clear()
    assert validate(root) == expected
    assert bool(checked) == ("renamed" not in what), checked
    checked.clear()
    assert validate(root) == expected and checked == [], "the new findings were not kept"


def test_one_changed_mapping_is_the_only_one_checked_and_modelled_again(
    make_repo: Callable[..., Path], checked: list[str]
) -> None:
    root = make_repo(FILES)
    cold = repo.load(str(root), repo.LoadOptions(1, cache=False)).diagnostics
    repo.load(str(root), repo.LoadOptions(1))
    _swap("integrations/HaloPSA/mappings/contoso.yaml", "page_size: 50", "page_size: fifty")(root)
    checked.clear()
    warm = repo.load(str(root), repo.LoadOptions(1))
    assert checked == ["integrations/HaloPSA/mappings/contoso.yaml"]
    made = {p.path for p in warm.catalog.mappings.values() if p.made}
    assert made == {"integrations/HaloPSA/mappings/contoso.yaml"}
    # nor is an unchanged mapping's document read from the cache
    loaded = {p.path for p in warm.catalog.mappings.values() if p.loaded}
    assert loaded == {"integrations/HaloPSA/mappings/contoso.yaml"}
    assert warm.diagnostics != cold and any(d.code == "C002" for d in warm.diagnostics)
    assert warm.diagnostics == repo.load(str(root), repo.LoadOptions(1, cache=False)).diagnostics
    # a document and model not made yet are made when asked for, and are the ones a cold run has
    fabrikam = warm.catalog.mappings[("HaloPSA", "fabrikam")]
    assert not fabrikam.loaded and not fabrikam.made
    assert fabrikam.model.oauth == "own" and fabrikam.made and fabrikam.loaded
    cold_doc = repo.load(str(root), repo.LoadOptions(1, cache=False)).catalog.mappings[
        ("HaloPSA", "fabrikam")
    ]
    assert (fabrikam.model, fabrikam.doc.data) == (cold_doc.model, cold_doc.doc.data)
    assert fabrikam.doc.pos(("oauth",)) == cold_doc.doc.pos(("oauth",)) != (0, 0)


def test_a_document_whose_cached_body_is_lost_is_parsed_again(
    make_repo: Callable[..., Path], checked: list[str]
) -> None:
    """Another process may rewrite a shard without an entry this run's summary points to: the
    document is then read from the file again, the same as a cold run's; and when the file's
    bytes changed meanwhile, the command says so (exit 2) rather than use a different document."""
    root = make_repo(FILES)
    repo.load(str(root), repo.LoadOptions(1))
    for shard in Path(cache.base_dir()).rglob("[0-9a-f][0-9a-f].bin"):
        shard.unlink()
    warm = repo.load(str(root), repo.LoadOptions(1))
    cold = repo.load(str(root), repo.LoadOptions(1, cache=False))
    assert warm.diagnostics == cold.diagnostics
    mapping, cold_doc = (r.catalog.mappings[("HaloPSA", "fabrikam")] for r in (warm, cold))
    assert not mapping.loaded
    assert (mapping.model, mapping.doc.data) == (cold_doc.model, cold_doc.doc.data)
    contoso = warm.catalog.mappings[("HaloPSA", "contoso")]
    (root / contoso.path).write_text((root / contoso.path).read_text() + "# edited meanwhile\n")
    with pytest.raises(repo.RepoError, match="changed while it was being checked"):
        contoso.doc  # noqa: B018 - the lazy load is what is tested


def test_a_damaged_checks_file_is_ignored_and_rebuilt(
    make_repo: Callable[..., Path], checked: list[str]
) -> None:
    root = make_repo(FILES)
    expected = validate(root)
    (memo,) = Path(cache.base_dir()).rglob(cache.CHECKS)
    blob = memo.read_bytes()
    memo.write_bytes(blob[:-3] + bytes([blob[-3] ^ 0xFF]) + blob[-2:])
    checked.clear()
    assert validate(root) == expected
    mappings = sorted(p.relative_to(root).as_posix() for p in root.glob("integrations/*/mappings/*.yaml"))
    assert len(mappings) > 1 and sorted(set(checked)) == mappings, "a damaged checks file was trusted"
    checked.clear()
    assert validate(root) == expected and checked == [], "the damaged checks file was not rewritten"


def test_a_broken_sops_block_is_reported_warm_as_cold(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """K003 (a document's own sops metadata) is kept with the file's parse, not re-derived."""
    broken = FILES["integrations/HaloPSA/mappings/fabrikam.yaml"] + "sops:\n  lastmodified: '2024-01-01'\n"
    root = make_repo({**FILES, "integrations/HaloPSA/mappings/fabrikam.yaml": broken})
    expected = validate(root, "--no-cache")
    assert "fabrikam.yaml:7:1: K003 " in expected[0][1], expected[0][1]
    assert validate(root) == expected  # fills the cache
    parsed: list[str] = []
    real = perfile.analyse

    def spy(rel: str, *rest: Any) -> Any:
        parsed.append(rel)
        return real(rel, *rest)

    monkeypatch.setattr(perfile, "analyse", spy)
    assert validate(root) == expected  # from it
    assert parsed == [], "the warm run parsed files again"


def test_a_diff_reads_only_the_mappings_a_change_can_affect(make_repo: Callable[..., Path]) -> None:
    """Both sides of a diff share the cache: a mapping whose file is the same on both (its key)
    is neither loaded nor resolved, and the diff is the one a cold run gives. (The mappings of
    the integration whose config changed are read: who overrides the key.)"""
    other = "integrations/Other/integration.yaml"
    root = make_repo(
        {
            **FILES,
            other: API + "kind: Integration\nname: Other\nconfig_schema:\n  - {key: site, type: string}\n",
            "integrations/Other/mappings/contoso.yaml": API
            + "kind: Mapping\nintegration: Other\norganization: contoso\nentity_id: '9'\nconfig: {site: a}\n",
        }
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    _swap("integrations/HaloPSA/mappings/contoso.yaml", "page_size: 50", "page_size: 75")(root)
    cold, _ = diffrun.compare(str(root), "HEAD", None, options=repo.LoadOptions(1, cache=False))
    diffrun.compare(str(root), "HEAD", None, options=repo.LoadOptions(1))  # fills the cache
    warm, head = diffrun.compare(str(root), "HEAD", None, options=repo.LoadOptions(1))
    assert warm == cold and [c.key for c in warm.changes["contoso"]] == ["page_size"]
    loaded = {p.path for p in head.catalog.mappings.values() if p.loaded}
    assert loaded == {
        "integrations/HaloPSA/mappings/contoso.yaml",
        "integrations/HaloPSA/mappings/fabrikam.yaml",
    }
