"""`bifrost-gitops report`: the HTML page, checked as a person would see it, in a real headless
Chromium (Debian's package, installed here when missing), and for secrets in the file itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess as sp
from pathlib import Path

import pytest

from bifrost_gitops import escape, htmlreport
from support import BASE_FILES, ENC, FAKE_SOPS, git, run_cli, write_repo

CANARY_OLD = "CANARYOLDc2VjcmV0"  # inside ciphertext: not even that may reach the page
CANARY_NEW = "CANARYNEWc2VjcmV0"
MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
INTEGRATION = "integrations/HaloPSA/integration.yaml"


def _install_chromium() -> str | None:
    """The chromium binary; installed with apt-get once when missing and we are root."""
    found = shutil.which("chromium")
    if found or os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            sp.run(
                cmd,
                capture_output=True,
                timeout=900,
                check=False,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        except (OSError, sp.TimeoutExpired):
            return None
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    found = _install_chromium()
    if found is None:
        pytest.skip(
            "Debian's chromium is not installed and cannot be (needs root and apt-get): no browser test"
        )
    return found


def browse(
    chromium: str, page: Path, tmp: Path, fragment: str = "", shot: Path | None = None
) -> tuple[str, str]:
    """Load PAGE in headless Chromium; the DOM after its scripts ran, and the browser's log."""
    out = ["--screenshot=" + str(shot), "--window-size=1400,900"] if shot else ["--dump-dom"]
    proc = sp.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            "--virtual-time-budget=3000",
            *out,
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=sp.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def console_errors(log: str) -> list[str]:
    """Console messages and uncaught errors from the page (Chromium logs them as CONSOLE lines)."""
    return [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def cells(dom: str) -> dict[tuple[str, str], str]:
    """(organization, integration) -> the cell's hover text, from the rendered DOM."""
    out = {}
    for title in re.findall(r'<div class="c (?:map|def|gone)[^"]*"[^>]* title="([^"]*)"', dom):
        text = title.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
        m = re.match(r"(\S+) for (\S+?):", text)
        assert m, text
        out[(m.group(2), m.group(1))] = text
    return out


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, str]:
    """A git repository: base, then head changes HaloPSA's default page_size (fabrikam sees it,
    contoso overrides it), adds an integration, and re-encrypts contoso's api_key."""
    secret_mapping = BASE_FILES[MAPPING] + "secrets:\n  api_key: {enc}\n"
    root = write_repo(
        tmp_path / "repo",
        {MAPPING: secret_mapping.format(enc=ENC.replace("c2VjcmV0", CANARY_OLD)) + FAKE_SOPS},
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    base = git(root, "rev-parse", "HEAD").strip()
    (root / INTEGRATION).write_text(
        (root / INTEGRATION).read_text().replace("page_size: 100", "page_size: 120")
    )
    (root / MAPPING).write_text(secret_mapping.format(enc=ENC.replace("c2VjcmV0", CANARY_NEW)) + FAKE_SOPS)
    (root / "integrations/Ninja/integration.yaml").parent.mkdir(parents=True)
    (root / "integrations/Ninja/integration.yaml").write_text(
        "apiVersion: bifrost-gitops/v1\nkind: Integration\nname: Ninja\nentity_id: tenant-1\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "head")
    return root, base


def test_page_data_is_escaped_so_no_name_closes_the_script() -> None:
    text = escape.script_json({"org": "</script><!--&\u2028\u2029x"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"org": "</script><!--&\u2028\u2029x"}


def test_report_of_a_revision_without_base(tmp_path: Path, chromium: str) -> None:
    root = write_repo(tmp_path / "repo")
    out = tmp_path / "report.html"
    run = run_cli("report", str(root), "-o", str(out))
    assert run.code == 0, run.output
    assert run.stdout.strip() == f"{out}: 2 organizations x 1 integrations"
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), (
        "the page must need nothing from outside"
    )
    dom, log = browse(chromium, out, tmp_path)
    assert console_errors(log) == []
    assert 'data-ready="1"' in dom and 'id="errors"></div>' in dom
    got = cells(dom)
    assert set(got) == {("contoso", "HaloPSA"), ("fabrikam", "HaloPSA")}
    assert got[("contoso", "HaloPSA")].startswith("HaloPSA for contoso: mapped, entity id 12, 2 overrides")
    assert got[("fabrikam", "HaloPSA")].startswith(
        "HaloPSA for fabrikam: defaults only, entity id none, 0 overrides"
    )
    assert not re.search(r'class="c [^"]* chg"', dom)  # nothing is marked changed without --base


def test_changed_cells_show_their_change_and_no_secret_reaches_the_page(
    history: tuple[Path, str], tmp_path: Path, chromium: str
) -> None:
    root, base = history
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    run = run_cli("report", str(root), "-o", str(out), "--base", base, "--head", "HEAD")
    assert run.code == 0, run.output
    assert run.stdout.strip() == f"{out}: 2 organizations x 2 integrations, 4 changed cells"
    html = out.read_text(encoding="utf-8")
    for leak in (CANARY_OLD, CANARY_NEW, "ENC[", "AES256_GCM"):
        assert leak not in html

    dom, log = browse(chromium, out, tmp_path)
    assert console_errors(log) == []
    got = cells(dom)
    assert set(got) == {(o, i) for o in ("contoso", "fabrikam") for i in ("HaloPSA", "Ninja")}
    assert "config page_size: 100 -> 120" in got[("fabrikam", "HaloPSA")]
    assert "page_size" not in got[("contoso", "HaloPSA")]  # contoso's override shields it
    assert "config api_key: <secret> -> <secret> ciphertext changed" in got[("contoso", "HaloPSA")]
    assert "integration: (unset) -> added" in got[("fabrikam", "Ninja")]
    assert len(re.findall(r'class="c [a-z]+ chg"', dom)) == 4

    # a click on a changed cell opens its change (the click sets this fragment)
    dom, log = browse(chromium, out, tmp_path, "#cell=fabrikam/HaloPSA")
    assert console_errors(log) == []
    detail = re.search(r'<div id="detail" role="dialog" class="open">.*?</div>', dom, re.S)
    assert detail, "the change panel did not open"
    assert "fabrikam · HaloPSA" in detail.group()
    assert "<li>config page_size: 100 -&gt; 120   [integrations/HaloPSA/integration.yaml:" in detail.group()

    # the filter box keeps the integrations, or else the organizations, whose name holds the text
    dom, _ = browse(chromium, out, tmp_path, "#filter=nin")
    assert set(cells(dom)) == {("contoso", "Ninja"), ("fabrikam", "Ninja")}
    dom, _ = browse(chromium, out, tmp_path, "#filter=fabri")
    assert set(cells(dom)) == {("fabrikam", "HaloPSA"), ("fabrikam", "Ninja")}
    assert "1 of 2 shown" in dom

    shot = tmp_path / "report.png"
    browse(chromium, out, tmp_path, "#cell=fabrikam/HaloPSA", shot=shot)
    assert shot.stat().st_size > 5000
    print(f"report screenshot: {shot}")


def test_three_thousand_organizations_render_only_the_rows_in_view(tmp_path: Path, chromium: str) -> None:
    names = [f"org{i:04d}" for i in range(3000)]
    orgs = "apiVersion: bifrost-gitops/v1\nkind: Organizations\norganizations:\n" + "".join(
        f"  - name: {n}\n" for n in names
    )
    root = write_repo(tmp_path / "repo", {"organizations.yaml": orgs, MAPPING: None})
    out = tmp_path / "big.html"
    assert run_cli("report", str(root), "-o", str(out)).code == 0
    dom, log = browse(chromium, out, tmp_path)
    assert console_errors(log) == []
    assert "3000 of 3000 shown" in dom
    rows = re.findall(r'<div class="c o"[^>]*>(org\d+)</div>', dom)
    assert rows[0] == "org0000" and 10 < len(rows) < 200  # drawn lazily, not all 3,000
    ms = re.search(r'data-ms="([\d.]+)"', dom)
    assert ms
    print(f"3,000 organizations: page script {ms.group(1)} ms")


def test_unknown_base_is_one_line_and_exit_2(history: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = history
    run = run_cli("report", str(root), "-o", str(tmp_path / "r.html"), "--base", "no-such-rev")
    assert run.code == 2
    assert "Traceback" not in run.output and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_a_revision_with_errors_is_still_drawn_but_exits_1(tmp_path: Path) -> None:
    orgs = "apiVersion: bifrost-gitops/v1\nkind: Organizations\norganizations:\n  - name: 'a b'\n"
    root = write_repo(tmp_path / "repo", {"organizations.yaml": orgs, MAPPING: None})
    out = tmp_path / "r.html"
    run = run_cli("report", str(root), "-o", str(out))
    assert run.code == 1
    assert "in the shown revision (hint: run validate)" in run.stderr
    assert out.is_file()


def test_a_hostile_name_stays_inside_the_data_block() -> None:
    name = "x</script><script>alert(1)</script>\u2028<!--"
    m = htmlreport.Matrix("work tree", [name], ["HaloPSA"], [[htmlreport.Cell(True, name, 1)]])
    page = htmlreport.render(m)
    data = page.split('<script type="application/json" id="data">')[1].split("</script>")[0]
    assert json.loads(data)["orgs"] == [name]
    assert page.count("</script>") == 2  # the data block's and the page script's own
