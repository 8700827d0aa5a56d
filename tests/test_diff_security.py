"""`diff` on a hostile pull request: security-relevant changes first, secret-typed values
masked, every name and value escaped for text, markdown and JSON.

Real git histories in tmp_path (helpers from test_diff), the CLI run in process.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bifrost_gitops import diff as df
from bifrost_gitops import diffreport
from bifrost_gitops.diagnostics import Diagnostic
from bifrost_gitops.escape import UNSAFE_CHARS
from bifrost_gitops.security import Alert
from support import API, BASE_FILES, line_of
from test_diff import CONTOSO, HALO, Git, canary, diff, diff_json

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
AGE_1 = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
AGE_2 = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
AGE_3 = "age1cy0su9fwf3gf9mw868g5yut09p6nytfmmnktexz2ya5uqg9vl9sss4euqm"
FORMATS = ("text", "markdown", "json")


def orgs(contoso_id: str | None, fabrikam_id: str | None, display: str = "Contoso Ltd") -> str:
    def org(name: str, oid: str | None, extra: str = "") -> str:
        return f"  - name: {name}\n" + (f"    id: {oid}\n" if oid else "") + extra

    return (
        API
        + "kind: Organizations\norganizations:\n"
        + org("contoso", contoso_id, f"    display_name: {display}\n")
        + org("fabrikam", fabrikam_id)
    )


def project(*recipients: str) -> str:
    body = "".join(f"    - {r}\n" for r in recipients)
    return API + "kind: Project\n" + (f"bundle:\n  recipients:\n{body}" if recipients else "")


@pytest.fixture
def ids(tmp_path: Path) -> Git:
    """BASE_FILES with both organizations' Bifrost UUIDs and one bundle recipient."""
    g = Git(tmp_path / "ids")
    g.commit("base", {**BASE_FILES, "organizations.yaml": orgs(A, B), "bifrost-gitops.yaml": project(AGE_1)})
    return g


def all_runs(g: Git, *args: str) -> dict[str, Any]:
    return {fmt: diff(g, *args, "--format", fmt, *(["--by-org"] if fmt == "json" else [])) for fmt in FORMATS}


# --- organization identity ------------------------------------------------------------------


def test_swapped_organization_ids_come_first_and_count_as_changes(ids: Git) -> None:
    text = orgs(B, A)
    ids.commit("swap", {"organizations.yaml": text})
    doc = diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")
    got = [(a["kind"], a["subject"], a["field"], a["old"], a["new"]) for a in doc["security"]]
    assert got == [
        ("organization", "contoso", "id", A, B),
        ("organization", "fabrikam", "id", B, A),
    ]
    assert doc["security"][0]["note"] == "this id was fabrikam's in base; its old id is now fabrikam's"
    assert doc["security"][0]["source"] == f"organizations.yaml:{line_of(text, f'id: {B}')}"  # the id's line
    assert doc["changes"] == {}  # no workflow value changed: the danger is only in the ids
    assert doc["affected"] == 2 and doc["per_integration"] == {"(organization id or display name)": 2}

    for fmt, run in all_runs(ids, "--base", "HEAD~1", "--head", "HEAD", "--exit-code").items():
        assert run.code == 1, (fmt, run)
        assert "0 of 2" not in run.stdout
    assert diff(ids, "--base", "HEAD~1", "--head", "HEAD").code == 0  # reported, not an error

    out = diff(ids, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert out.startswith("SECURITY-RELEVANT CHANGES: 2 (review before merging")
    assert f"  organization contoso: id: {A} -> {B}  (this id was fabrikam's in base" in out
    assert "\n2 security-relevant changes; 2 of 2 organizations affected (HEAD~1 (" in out

    md = diff(ids, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert md.startswith("### ⚠️ Security-relevant changes (2): review before merging\n")
    assert md.index("Security-relevant") < md.index("### bifrost-gitops diff: 2 security-relevant changes")
    assert f"| organization contoso | id | changed | `{A}` | `{B}` | this id was fabrikam's in base" in md


def test_display_name_change_and_an_id_given_for_the_first_time(ids: Git) -> None:
    ids.commit("rename", {"organizations.yaml": orgs(A, None, display="Contoso Holdings")})
    doc = diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")
    got = [(a["subject"], a["field"], a["action"], a["old"], a["new"]) for a in doc["security"]]
    assert got == [
        ("contoso", "display_name", "changed", '"Contoso Ltd"', '"Contoso Holdings"'),
        ("fabrikam", "id", "removed", B, None),
    ]
    out = diff(ids, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert 'organization contoso: display_name: "Contoso Ltd" -> "Contoso Holdings"' in out
    assert f"organization fabrikam: id removed {B}" in out


def test_an_id_moving_to_a_renamed_organization_is_named(ids: Git) -> None:
    text = orgs(A, None).replace("fabrikam", "fabrikam-2") + f"    id: {B}\n"
    ids.commit("rename fabrikam", {"organizations.yaml": text})
    doc = diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")
    (alert,) = doc["security"]
    assert (alert["subject"], alert["field"], alert["action"], alert["new"]) == (
        "fabrikam-2",
        "id",
        "added",
        B,
    )
    assert alert["note"] == "this id was fabrikam's in base"


def test_integration_id_changed_or_moved_is_security_relevant(ids: Git) -> None:
    """An integration's `id:` decides which Bifrost integration apply writes its secrets into."""
    halo_a = BASE_FILES[HALO].replace("name: HaloPSA\n", f"name: HaloPSA\nid: {A}\n")
    ids.commit("declare", {HALO: halo_a})
    halo_b = BASE_FILES[HALO].replace("name: HaloPSA\n", f"name: HaloPSA\nid: {B.upper()}\n")
    ids.commit("repoint", {HALO: halo_b})
    doc = diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")
    got = [(a["kind"], a["subject"], a["field"], a["action"], a["old"], a["new"]) for a in doc["security"]]
    assert got == [("integration", "HaloPSA", "id", "changed", A, B.upper())]
    assert doc["security"][0]["source"] == f"{HALO}:{line_of(halo_b, 'id: ')}"
    assert diff(ids, "--base", "HEAD~1", "--head", "HEAD", "--exit-code").code == 1
    text = diff(ids, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert text.startswith("SECURITY-RELEVANT CHANGES: 1") and f"integration HaloPSA: id: {A} -> " in text
    # the first declaration of an id is a change too; the same id in other case is not
    assert [a["action"] for a in diff_json(ids, "--base", "HEAD~2", "--head", "HEAD~1")["security"]] == [
        "added"
    ]
    ids.commit("case", {HALO: halo_b.replace(B.upper(), B)})
    assert diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")["security"] == []
    # a new integration that takes over another one's Bifrost integration says whose it was
    other = halo_b.replace("name: HaloPSA", "name: HaloTwo").replace(B.upper(), B)
    ids.commit("takeover", {HALO: BASE_FILES[HALO], "integrations/HaloTwo/integration.yaml": other})
    alerts = diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")["security"]
    assert [(a["subject"], a["action"], a["note"]) for a in alerts] == [
        ("HaloPSA", "removed", None),
        ("HaloTwo", "added", "this id was HaloPSA's in base"),
    ]


def test_uuid_case_alone_is_no_change(ids: Git) -> None:
    ids.commit("case", {"organizations.yaml": orgs(A.upper(), B)})
    assert diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")["security"] == []


# --- bundle recipients ----------------------------------------------------------------------


def test_bundle_recipient_added_and_removed(ids: Git) -> None:
    text = project(AGE_2, AGE_3)
    ids.commit("new runtime keys", {"bifrost-gitops.yaml": text})
    doc = diff_json(ids, "--base", "HEAD~1", "--head", "HEAD")
    got = [(a["kind"], a["action"], a["old"], a["new"], a["source"]) for a in doc["security"]]
    assert got == [
        ("bundle.recipients", "removed", AGE_1, None, "bifrost-gitops.yaml:5 in base"),
        ("bundle.recipients", "added", None, AGE_2, f"bifrost-gitops.yaml:{line_of(text, AGE_2)}"),
        ("bundle.recipients", "added", None, AGE_3, f"bifrost-gitops.yaml:{line_of(text, AGE_3)}"),
    ]
    assert doc["security"][1]["note"] == "it can open every sealed bundle"
    run = diff(ids, "--base", "HEAD~1", "--head", "HEAD", "--exit-code")
    assert run.code == 1
    assert run.stdout.startswith("SECURITY-RELEVANT CHANGES: 3")
    assert (
        f"bifrost-gitops.yaml bundle.recipients: added {AGE_2}  (it can open every sealed bundle)"
        in run.stdout
    )
    # reordering the same recipients changes nothing
    ids.commit("reorder", {"bifrost-gitops.yaml": project(AGE_3, AGE_2)})
    assert diff(ids, "--base", "HEAD~1", "--head", "HEAD", "--exit-code").code == 0


# --- .sops.yaml -----------------------------------------------------------------------------

SOPS_BASE = f"""\
creation_rules:
  - path_regex: ^integrations/
    encrypted_regex: ^secrets$
    age: {AGE_1},{AGE_2}
  - age: [{AGE_1}]
"""


def test_sops_rule_changes_name_the_rule_and_the_recipient(tmp_path: Path) -> None:
    g = Git(tmp_path / "r", sub="repo")  # .sops.yaml at the top, the repository in a subfolder
    (g.top / ".sops.yaml").write_text(SOPS_BASE)
    g.commit("base", BASE_FILES)
    new = SOPS_BASE.replace(f"{AGE_1},{AGE_2}", f"{AGE_1},{AGE_3}").replace("^secrets$", "^(secrets|config)$")
    new = new.replace(
        "creation_rules:\n", "creation_rules:\n  - path_regex: ^oauth/\n    age: [" + AGE_3 + "]\n"
    )
    (g.top / ".sops.yaml").write_text(new)
    g.commit("rules")
    doc = diff_json(g, "--base", "HEAD~1", "--head", "HEAD")
    rule0 = '../.sops.yaml creation_rules[1] (path_regex "^integrations/")'
    got = [(a["subject"], a["field"], a["action"], a["old"], a["new"]) for a in doc["security"]]
    assert got == [
        ('../.sops.yaml creation_rules[0] (path_regex "^oauth/")', None, "added", None, None),
        ('../.sops.yaml creation_rules[0] (path_regex "^oauth/")', "age", "added", None, AGE_3),
        (rule0, "encrypted_regex", "changed", '"^secrets$"', '"^(secrets|config)$"'),
        (rule0, "age", "removed", AGE_2, None),
        (rule0, "age", "added", None, AGE_3),
    ]
    assert doc["security"][4]["source"] == f"../.sops.yaml:{line_of(new, AGE_3, 2)}"
    assert diff(g, "--base", "HEAD~1", "--head", "HEAD", "--exit-code").code == 1
    md = diff(g, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert md.startswith("### ⚠️ Security-relevant changes (5)")
    assert f"| age | removed | `{AGE_2}` |" in md

    # the work tree as head reads the same file; swapping two rules is a change of order
    head, first, second, *rest = new.split("\n  - ")
    (g.top / ".sops.yaml").write_text("\n  - ".join([head, second, first, *rest]))
    doc = diff_json(g, "--base", "HEAD")
    assert [(x["field"], x["action"]) for x in doc["security"]] == [("order", "changed")]
    assert doc["security"][0]["note"] == "the first rule whose path_regex matches a file applies"


def test_sops_yaml_never_shows_private_key_material(ids: Git) -> None:
    leak = "AGE-SECRET-KEY-1" + canary("SOPSKEY").replace("-", "")
    ids.commit("rules", {".sops.yaml": SOPS_BASE})
    ids.commit("oops", {".sops.yaml": SOPS_BASE.replace(f",{AGE_2}", f",{leak}")})
    for fmt, run in all_runs(ids, "--base", "HEAD~1", "--head", "HEAD").items():
        assert leak not in run.stdout and canary("SOPSKEY") not in run.stdout, fmt
        assert "private key material" in run.stdout, fmt
    # a .sops.yaml added where there was none shows every rule and recipient
    doc = diff_json(ids, "--base", "HEAD~2", "--head", "HEAD~1")
    assert [a["field"] for a in doc["security"]][:2] == ["location", None]
    assert AGE_2 in {a["new"] for a in doc["security"]}


# --- secret-typed keys under config: -----------------------------------------------------------


def test_secret_typed_key_under_config_is_masked_everywhere(ids: Git) -> None:
    """C004 in base and head, in defaults and in a mapping; and a key that turns secret."""
    same, old, new, turned = (canary(t) for t in ("SAME", "OLD", "NEW", "TURNED"))
    halo = BASE_FILES[HALO].replace("{key: region,", "{key: note, type: string}\n  - {key: region,")
    ids.commit(
        "clear secrets",
        {
            HALO: halo + f"    api_key: {same}\n    note: {turned}\n",
            CONTOSO: BASE_FILES[CONTOSO] + f"  api_key: {old}\n",
        },
    )
    ids.commit(
        "changed",
        {
            HALO: halo.replace("{key: note, type: string}", "{key: note, type: secret}")
            + f"    api_key: {same}\n    note: {turned}\n",
            CONTOSO: BASE_FILES[CONTOSO] + f"  api_key: {new}\n",
        },
    )
    runs = all_runs(ids, "--base", "HEAD~1", "--head", "HEAD")
    for fmt, run in runs.items():
        assert run.code == 1, (fmt, run)  # C004 in head
        for needle in (same, old, new, turned):
            assert needle not in run.stdout and needle not in run.stderr, (fmt, needle)
        assert "C004" in run.stdout
    doc = json.loads(runs["json"].stdout)
    contoso = {(c["key"], c["old"], c["new"]) for c in doc["changes"]["contoso"]}
    assert ("api_key", "<secret>", "<secret> changed") in contoso  # compared, not shown
    assert ("note", "<secret>", "<secret>") not in contoso  # same value, secret on one side: no change
    assert "fabrikam" not in doc["changes"]  # the default api_key did not change
    # against a base without the values: added, still masked
    doc = diff_json(ids, "--base", "HEAD~2", "--head", "HEAD")
    assert ("api_key", None, "<secret>") in {
        (c["key"], c["old"], c["new"]) for c in doc["changes"]["fabrikam"]
    }
    assert all(n not in json.dumps(doc) for n in (same, old, new, turned))


# --- hostile names and values ------------------------------------------------------------------

HOSTILE = [
    "evil\n::error::pwned",
    "red\x1b[31mtext",
    "<!-- hide the rest",
    "pipe|in|name",
    "tick`name``",
    "bidi\u202etxt.exe",
    "runner ##[error]x",
    "back\\|slash",
]
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")
_RUN = re.compile(r"`+")


def without_code_spans(line: str) -> str:
    """LINE with its code spans cut out, as CommonMark reads them: a run of N backticks opens a
    span that the next run of exactly N backticks closes (a run without one is literal); a
    backslash before a run, outside a span, escapes its first backtick."""
    out, pos = [], 0
    while (m := _RUN.search(line, pos)) is not None:
        start = m.start()
        slashes = len(line[:start]) - len(line[:start].rstrip("\\"))
        if slashes % 2:
            start += 1
        out.append(line[pos:start])
        run = line[start : m.end()]
        close = None
        if run:
            close = next((c for c in _RUN.finditer(line, m.end()) if len(c.group()) == len(run)), None)
        if close is None:
            out.append(run)
            pos = m.end()
        else:
            pos = close.end()
    return "".join(out) + line[pos:]


_TAGS = re.compile(r"</?(details|summary|b)>")


def assert_safe_text(out: str) -> None:
    for line in out.splitlines():
        assert not _UNSAFE.search(line), repr(line)
        assert not line.lstrip().startswith("::"), repr(line)
        assert "##[" not in line, repr(line)


def assert_safe_markdown(md: str) -> None:
    assert_safe_text(md)
    lines = md.splitlines()
    for line in lines:
        bare = _TAGS.sub("", without_code_spans(line))
        assert "<" not in bare, f"raw HTML outside a code span: {line!r}"
    for i, line in enumerate(lines):  # every table keeps its header's column count
        if line.startswith("|---"):
            width = len(re.split(r"(?<!\\)\|", lines[i - 1]))
            for row in lines[i + 1 :]:
                if not row.startswith("|"):
                    break
                assert len(re.split(r"(?<!\\)\|", row)) == width, row


def assert_safe_json(out: str) -> Any:
    assert out.isascii() and not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", out), out
    return json.loads(out)


def hostile_repo(g: Git, names: list[str]) -> None:
    """One integration per name (added in head), each mapped for contoso with a hostile value."""
    files: dict[str, str | None] = {}
    for i, name in enumerate(names):
        files[f"integrations/h{i}/integration.yaml"] = (
            API
            + f"kind: Integration\nname: {json.dumps(name)}\nconfig_schema:\n  - {{key: url, type: string}}\n"
        )
        files[f"integrations/h{i}/mappings/contoso.yaml"] = (
            API
            + f"kind: Mapping\nintegration: {json.dumps(name)}\norganization: contoso\nentity_id: "
            + f"{json.dumps(name)}\nconfig:\n  url: {json.dumps(name)}\n"
        )
    # and hostile values where a known integration changes: entity id, a config value
    value = json.dumps("|".join(names))
    files[CONTOSO] = (
        BASE_FILES[CONTOSO].replace('entity_id: "12"', f"entity_id: {value}") + f"  url: {value}\n"
    )
    files["integrations/HaloPSA/mappings/fabrikam.yaml"] = (
        BASE_FILES["integrations/HaloPSA/mappings/contoso.yaml"].replace("contoso", "fabrikam")
        + f"  url: {value}\n"
    )
    g.commit("hostile", files)


def test_hostile_names_are_escaped_in_every_format(ids: Git) -> None:
    hostile_repo(ids, HOSTILE)
    runs = all_runs(ids, "--base", "HEAD~1", "--head", "HEAD")
    assert_safe_text(runs["text"].stdout)
    assert_safe_markdown(runs["markdown"].stdout)
    doc = assert_safe_json(runs["json"].stdout)
    # names validate still accepts reach every output, escaped but whole
    added = {c["integration"] for c in doc["changes"].get("contoso", []) if c["what"] == "integration"}
    for name in ("<!-- hide the rest", "pipe|in|name", "tick`name``", "back\\|slash"):
        assert name in added
    halo = {c["what"]: c["new"] for c in doc["changes"]["contoso"] if c["integration"] == "HaloPSA"}
    # in JSON the value is the text itself (cut to its first 80 characters), only escaped
    assert halo["entity_id"] == "null"  # an entity id with control characters is S004, not used
    assert any(f["code"] == "S004" for f in doc["findings"]["head"])
    (url,) = [c["new"] for c in doc["changes"]["fabrikam"] if c["key"] == "url"]
    assert url.startswith('"evil\\n::error::pwned|red')  # config values are data
    md = runs["markdown"].stdout
    assert "\\<\\!\\-\\- hide the rest" not in md  # md_text: "<" is an entity, not a tag
    assert "&lt;\\!\\-\\- hide the rest" in md
    assert "pipe\\|in\\|name" in md
    assert '"evil\\n::error::pwned' in runs["text"].stdout  # the value, shown after its key


#: control characters, separators, bidi, markup and workflow-command material, plus any text
_HOSTILE_CHARS = list("\n\r\t\x00\x1b\x7f\x85\u2028\u202e\u200b\ufeff|`<>!-:#[]\\&*_'\"")
TEXT = st.text(alphabet=st.one_of(st.sampled_from(_HOSTILE_CHARS), st.characters(codec="utf-8")), max_size=12)
MAYBE = st.none() | TEXT


@st.composite
def diffs(draw: st.DrawFn) -> df.Diff:
    change = st.builds(
        df.Change,
        integration=MAYBE,
        what=st.sampled_from(["organization", "integration", "mapping", "entity_id", "config", "oauth"]),
        key=MAYBE,
        old=MAYBE,
        new=MAYBE,
        source=MAYBE,
    )
    alert = st.builds(
        Alert,
        kind=st.sampled_from(["organization", "bundle.recipients", "sops"]),
        subject=TEXT,
        field=MAYBE,
        action=st.sampled_from(["added", "removed", "changed"]),
        old=MAYBE,
        new=MAYBE,
        note=MAYBE,
        source=MAYBE,
    )
    finding = st.builds(
        Diagnostic,
        code=st.just("S001"),
        severity=st.just("error"),
        path=TEXT,
        line=st.just(1),
        col=st.just(1),
        message=TEXT,
        hint=MAYBE,
    )
    return df.Diff(
        draw(TEXT),
        draw(TEXT),
        5,
        changes=draw(st.dictionaries(TEXT, st.lists(change, min_size=1, max_size=3), max_size=5)),
        head_findings=draw(st.lists(finding, max_size=2)),
        security=draw(st.lists(alert, max_size=3)),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(diffs())
def test_fuzz_every_diff_format_is_safe(d: df.Diff) -> None:
    assert_safe_text(diffreport.render_text(d))
    assert_safe_markdown(diffreport.render_markdown(d))
    doc = assert_safe_json(diffreport.render_json(d, by_org=True))
    assert [a["subject"] for a in doc["security"]] == [a.subject for a in d.security]
    assert list(doc["changes"]) == list(d.changes)  # escaped for JSON, never altered


def test_an_empty_name_beside_a_hostile_one_opens_no_html() -> None:
    """Found by the fuzz above: an empty code span (``) paired with the next name's backticks,
    which left that name's '<' outside any span, as raw HTML in the pull-request comment."""
    hostile = "<img src=x onerror=alert(1)>`"
    org = df.Change(None, "organization", None, None, None, None)
    d = df.Diff("", "", 5, {"": [org, df.Change(None, "organization", None, None, None, hostile)]})
    assert_safe_markdown(diffreport.render_markdown(d))
