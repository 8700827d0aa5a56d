"""publish BUNDLE --to DIR: verified, atomic current swap, N kept, rollback."""

from __future__ import annotations

import os
from pathlib import Path

from support import run_cli


def _bundle(make_repo: object, tmp_path: Path, name: str, page_size: int) -> Path:
    repo = make_repo()  # type: ignore[operator]
    p = repo / "integrations/HaloPSA/integration.yaml"
    p.write_text(p.read_text().replace("page_size: 100", f"page_size: {page_size}"))
    out = tmp_path / name
    r = run_cli("compile", str(repo), "-o", str(out), "--secrets", "redact")
    assert r.code == 0, r.output
    return out


def test_publish_keep_and_rollback(make_repo: object, tmp_path: Path) -> None:
    to = tmp_path / "runtime"
    bundles = [_bundle(make_repo, tmp_path, f"b{i}", 100 + i) for i in range(4)]
    seen = []
    for b in bundles:
        r = run_cli("publish", str(b), "--to", str(to), "--keep", "2")
        assert r.code == 0, r.output
        seen.append(os.readlink(to / "current"))
        assert (to / "current" / "index.json").read_bytes() == (b / "index.json").read_bytes()
    releases = sorted(os.listdir(to / "releases"))
    assert len(releases) == 3  # current + 2 previous
    r = run_cli("publish", str(bundles[-1]), "--to", str(to))
    assert r.code == 0 and "unchanged" in r.stderr
    r = run_cli("publish", "--to", str(to), "--rollback")
    assert r.code == 0, r.output
    assert os.readlink(to / "current") == seen[2]
    assert (to / "current" / "index.json").read_bytes() == (bundles[2] / "index.json").read_bytes()


def test_publish_refuses_an_altered_bundle(make_repo: object, tmp_path: Path) -> None:
    b = _bundle(make_repo, tmp_path, "b", 7)
    org = next((b / "orgs").iterdir())
    org.write_text(org.read_text() + " ")
    r = run_cli("publish", str(b), "--to", str(tmp_path / "rt"))
    assert r.code == 2 and "sha256" in r.stderr
    assert not (tmp_path / "rt" / "current").exists()


def test_rollback_with_nothing_published(tmp_path: Path) -> None:
    r = run_cli("publish", "--to", str(tmp_path / "rt"), "--rollback")
    assert r.code == 2 and "nothing is published" in r.stderr
