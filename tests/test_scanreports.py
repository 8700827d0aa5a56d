"""validate --format sarif / gitlab: the reports code scanning and merge-request widgets read.

SARIF is checked against the OASIS SARIF 2.1.0 JSON Schema (tests/data/sarif, see its README);
GitLab Code Quality against the shape GitLab documents, written down below as a JSON Schema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

from bifrost_gitops import __version__
from bifrost_gitops.diagnostics import CODES, WARNING_CODES
from support import API, ROOT, dedent
from test_cli import BAD_MAPPING, MAPPING  # a mapping with C001 at 7:3 and C003

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())

#: GitLab Code Quality: a list of issues, each with these fields (GitLab ignores others).
GITLAB_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}

#: An integration whose required key has no default: C007, a warning.
WARN_INTEGRATION = API + dedent(
    """
    kind: Integration
    name: Other
    config_schema:
      - {key: tenant, type: string, required: true}
    """
)
#: A config key from a hostile fork: a bidi override, a workflow command, a non-ASCII letter.
HOSTILE = "évil\u202e::error::x"


def _sarif(cli: Any, root: Path) -> dict[str, Any]:
    run = cli("validate", "--format", "sarif", cwd=root)
    assert run.code in (0, 1), run.stderr
    doc: dict[str, Any] = json.loads(run.stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    return doc


def _uri(result: dict[str, Any]) -> str:
    uri: str = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    return uri


def _findings_repo(make_repo: Any) -> Path:
    root: Path = make_repo(
        {
            MAPPING: BAD_MAPPING,
            "integrations/Other/integration.yaml": WARN_INTEGRATION,
            "integrations/HaloPSA/mappings/bad näme.yaml": API
            + "kind: Mapping\nintegration: HaloPSA\norganization: fabrikam\nentity_id: '1'\n"
            + f"config: {{{json.dumps(HOSTILE)}: 1}}\n",
        }
    )
    return root


def test_sarif_is_valid_and_carries_rules_results_and_locations(cli: Any, make_repo: Any) -> None:
    doc = _sarif(cli, _findings_repo(make_repo))
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("bifrost-gitops", __version__)
    assert driver["informationUri"].startswith("https://")
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == set(CODES)
    assert rules["C001"]["shortDescription"]["text"] == CODES["C001"]
    assert rules["C007"]["defaultConfiguration"]["level"] == "warning"
    assert rules["K001"]["defaultConfiguration"]["level"] == "error"

    by_code = {r["ruleId"]: r for r in run["results"] if _uri(r) == MAPPING or r["ruleId"] != "C001"}
    assert {"C001", "C003", "C007"} <= set(by_code)
    c001 = by_code["C001"]
    assert c001["level"] == "error"
    assert driver["rules"][c001["ruleIndex"]]["id"] == "C001"
    loc = c001["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": MAPPING, "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 7, "startColumn": 3}
    assert "pagesize" in c001["message"]["text"] and "page_size" in c001["message"]["text"]
    assert by_code["C007"]["level"] == "warning"


def test_sarif_escapes_hostile_names_and_paths(cli: Any, make_repo: Any) -> None:
    root = _findings_repo(make_repo)
    run = cli("validate", "--format", "sarif", cwd=root)
    assert run.stdout.isascii()  # the bidi override is a \u escape
    assert not any(line.lstrip().startswith("::") for line in run.stdout.splitlines())
    results = json.loads(run.stdout)["runs"][0]["results"]
    (hostile,) = [r for r in results if "::error" in r["message"]["text"]]
    uri = _uri(hostile)
    assert uri == "integrations/HaloPSA/mappings/bad%20n%C3%A4me.yaml"
    assert unquote(uri) == "integrations/HaloPSA/mappings/bad näme.yaml"
    assert "évil" in hostile["message"]["text"]


def test_sarif_clean_repository_has_no_results(cli: Any, make_repo: Any) -> None:
    doc = _sarif(cli, make_repo())
    assert doc["runs"][0]["results"] == []
    assert doc["runs"][0]["properties"]["files"] == 4


def _fingerprints(cli: Any, root: Path) -> dict[tuple[str, str, str], tuple[str, int]]:
    run = _sarif(cli, root)["runs"][0]
    return {
        (r["ruleId"], _uri(r), r["message"]["text"]): (
            r["partialFingerprints"]["bifrostGitops/v1"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in run["results"]
    }


def test_fingerprints_survive_lines_moving_above_a_finding(cli: Any, make_repo: Any) -> None:
    root = _findings_repo(make_repo)
    before = _fingerprints(cli, root)
    mapping = root / MAPPING
    mapping.write_text("# a comment\n# and another\n" + mapping.read_text())
    after = _fingerprints(cli, root)
    assert before.keys() == after.keys()
    for key, (fp, line) in before.items():
        assert after[key][0] == fp, key
        if key[1] == MAPPING:
            assert after[key][1] == line + 2
    assert len({fp for fp, _ in before.values()}) == len(before)  # one per finding


def test_fingerprints_ignore_line_numbers_inside_messages() -> None:
    from bifrost_gitops.diagnostics import error
    from bifrost_gitops.scanreports import fingerprints

    a = error("Y002", "x.yaml", (9, 3), "duplicate key 'a' (first at line 4)")
    b = error("Y002", "x.yaml", (12, 3), "duplicate key 'a' (first at line 7)")
    c = error("Y002", "x.yaml", (12, 3), "duplicate key 'b' (first at line 7)")
    assert list(fingerprints([a])) == list(fingerprints([b]))
    assert list(fingerprints([a])) != list(fingerprints([c]))
    # the same finding twice in one file stays two alerts
    first, second = fingerprints([a, b])
    assert first != second


def _slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_rule_help_links_point_at_existing_sections_of_the_code_table() -> None:
    from bifrost_gitops.scanreports import CODES_DOC, help_uri

    doc = (ROOT / "docs" / "error-codes.md").read_text()
    anchors = {_slug(line.lstrip("#")) for line in doc.splitlines() if line.startswith("## ")}
    for code in CODES:
        base, _, anchor = help_uri(code).partition("#")
        assert base == CODES_DOC and anchor in anchors, code


def test_warning_codes_agree_with_the_code_table() -> None:
    doc = (ROOT / "docs" / "error-codes.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z]\d{3})` \| warning \|", doc, re.MULTILINE))
    assert documented == WARNING_CODES


def test_every_code_the_checks_emit_has_a_rule_and_a_table_row() -> None:
    """A new code must reach SARIF's rule list (its short text) and docs/error-codes.md."""
    emitted: set[str] = set()
    for src in (ROOT / "src" / "bifrost_gitops").rglob("*.py"):
        emitted |= set(re.findall(r'\b(?:error|warning)\(\s*"([A-Z]\d{3})"', src.read_text()))
    doc = (ROOT / "docs" / "error-codes.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z]\d{3})` \|", doc, re.MULTILINE))
    assert "C012" in emitted and emitted <= set(CODES) and emitted <= rows


def test_gitlab_code_quality_matches_the_documented_shape(cli: Any, make_repo: Any) -> None:
    root = _findings_repo(make_repo)
    run = cli("validate", "--format", "gitlab", cwd=root)
    assert run.code == 1
    assert run.stdout.isascii()
    issues = json.loads(run.stdout)
    jsonschema.validate(issues, GITLAB_SCHEMA)
    by_code = {i["check_name"]: i for i in issues}
    assert by_code["C001"]["severity"] == "major"
    assert by_code["C007"]["severity"] == "minor"
    assert by_code["C001"]["location"] == {"path": MAPPING, "lines": {"begin": 7}}
    assert by_code["C001"]["description"].startswith("C001 ")
    assert "bad näme.yaml" in {i["location"]["path"].rsplit("/", 1)[-1] for i in issues}
    # the same finding has the same fingerprint in both reports
    sarif = {
        r["ruleId"]: r["partialFingerprints"]["bifrostGitops/v1"]
        for r in _sarif(cli, root)["runs"][0]["results"]
    }
    assert by_code["C001"]["fingerprint"] == sarif["C001"]
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_gitlab_clean_repository_is_an_empty_list(cli: Any, make_repo: Any) -> None:
    run = cli("validate", "--format", "gitlab", str(make_repo()))
    assert (run.code, json.loads(run.stdout)) == (0, [])


@pytest.mark.parametrize("fmt", ["sarif", "gitlab"])
def test_strict_still_decides_the_exit_code(cli: Any, make_repo: Any, fmt: str) -> None:
    root = make_repo({"integrations/Other/integration.yaml": WARN_INTEGRATION})
    assert cli("validate", "--format", fmt, cwd=root).code == 0
    assert cli("validate", "--strict", "--format", fmt, cwd=root).code == 1


@pytest.mark.parametrize("fmt", ["sarif", "gitlab"])
def test_paths_lead_from_the_checkout_root_to_a_repository_in_a_subfolder(
    cli: Any, make_repo: Any, fmt: str
) -> None:
    """CI runs at the checkout's root; code scanning and GitLab resolve paths from there."""
    root: Path = make_repo({MAPPING: BAD_MAPPING})
    run = cli("validate", "--format", fmt, root.name, cwd=root.parent)
    doc = json.loads(run.stdout)
    paths = (
        [_uri(r) for r in doc["runs"][0]["results"]]
        if fmt == "sarif"
        else [i["location"]["path"] for i in doc]
    )
    assert paths and all(p == f"{root.name}/{MAPPING}" for p in paths)
    # the fingerprint does not depend on where the command ran
    here = json.loads(cli("validate", "--format", fmt, cwd=root).stdout)
    assert _fingerprint_list(doc, fmt) == _fingerprint_list(here, fmt)


def _fingerprint_list(doc: Any, fmt: str) -> list[str]:
    if fmt == "sarif":
        return [r["partialFingerprints"]["bifrostGitops/v1"] for r in doc["runs"][0]["results"]]
    return [i["fingerprint"] for i in doc]


def test_suppressed_findings_are_dismissed_results_in_sarif(cli: Any, make_repo: Any) -> None:
    """A suppressed finding is a SARIF result with ``suppressions`` (code scanning shows it as
    dismissed, not gone); its fingerprint is the one it had before; GitLab leaves it out."""
    inline = BAD_MAPPING.replace("region: fr", "region: fr  # bifrost-gitops: ignore C003")
    root: Path = make_repo({MAPPING: inline})
    before = _fingerprints(cli, make_repo({MAPPING: BAD_MAPPING}))
    doc = json.loads(cli("validate", "--format", "sarif", "--ignore", "C001", cwd=root).stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    (run,) = doc["runs"]
    assert run["properties"]["suppressed"] == 2
    kinds = {r["ruleId"]: r["suppressions"][0]["kind"] for r in run["results"] if "suppressions" in r}
    assert kinds == {"C001": "external", "C003": "inSource"}
    prints = {r["ruleId"]: r["partialFingerprints"]["bifrostGitops/v1"] for r in run["results"]}
    assert {k[0]: fp for k, (fp, _) in before.items()} == prints
    gitlab = json.loads(cli("validate", "--format", "gitlab", "--ignore", "C001", cwd=root).stdout)
    assert gitlab == []
