"""publish BUNDLE --to DIR: verified, atomic current swap, a recorded history that rollback
follows (never back to a release rolled back from), --list, safe pruning, no leftovers."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import publish as pub
from support import run_cli, write_repo


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four distinct redacted bundles, A to D (one compile each, shared by the module)."""
    base = tmp_path_factory.mktemp("bundles")
    out: dict[str, Path] = {}
    for i, name in enumerate("ABCD"):
        repo = write_repo(base / f"repo{name}")
        p = repo / "integrations/HaloPSA/integration.yaml"
        p.write_text(p.read_text().replace("page_size: 100", f"page_size: {100 + i}"))
        r = run_cli("compile", str(repo), "-o", str(base / name), "--secrets", "redact")
        assert r.code == 0, r.output
        out[name] = base / name
    return out


def publish(b: Path, to: Path, *args: str) -> str:
    """Publish B; the release name current now points to."""
    r = run_cli("publish", str(b), "--to", str(to), *args)
    assert r.code == 0, r.output
    return os.path.basename(os.readlink(to / "current"))


def rollback(to: Path) -> str:
    r = run_cli("publish", "--to", str(to), "--rollback")
    assert r.code == 0, r.output
    return os.path.basename(os.readlink(to / "current"))


def live(to: Path) -> bytes:
    """What a runtime reading through current sees."""
    return (to / "current" / "index.json").read_bytes()


def index(b: Path) -> bytes:
    return (b / "index.json").read_bytes()


def listing(to: Path) -> dict[str, Any]:
    r = run_cli("publish", "--to", str(to), "--list", "--format", "json")
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


def test_publish_keep_and_rollback(bundles: dict[str, Path], tmp_path: Path) -> None:
    to = tmp_path / "runtime"
    seen = [publish(bundles[n], to, "--keep", "2") for n in "ABCD"]
    assert live(to) == index(bundles["D"])
    assert sorted(os.listdir(to / "releases")) == sorted(seen[1:])  # current + 2 previous
    r = run_cli("publish", str(bundles["D"]), "--to", str(to))
    assert r.code == 0 and "unchanged" in r.stderr
    assert rollback(to) == seen[2] and live(to) == index(bundles["C"])
    assert rollback(to) == seen[1] and live(to) == index(bundles["B"])


def test_rollback_never_returns_to_a_release_rolled_back_from(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    """publish A, B, roll back (to A), publish C, roll back: A was live before C, so A; not B."""
    to = tmp_path / "runtime"
    a = publish(bundles["A"], to)
    b = publish(bundles["B"], to)
    assert rollback(to) == a
    c = publish(bundles["C"], to)
    assert c not in (a, b)
    assert rollback(to) == a and live(to) == index(bundles["A"])
    r = run_cli("publish", "--to", str(to), "--rollback")
    assert r.code == 2 and "nothing to roll back to" in r.stderr, r.output
    assert len(r.stderr.splitlines()) == 1
    assert os.path.basename(os.readlink(to / "current")) == a


def test_rollbacks_in_a_row_walk_back_through_what_was_live(bundles: dict[str, Path], tmp_path: Path) -> None:
    to = tmp_path / "runtime"
    a, b = publish(bundles["A"], to), publish(bundles["B"], to)
    assert rollback(to) == a
    c, d = publish(bundles["C"], to), publish(bundles["D"], to)
    assert rollback(to) == c
    assert rollback(to) == a  # B was rolled back from: skipped
    assert listing(to)["current"] == a and b not in (c, d)


def test_list_shows_the_history_in_text_and_json(bundles: dict[str, Path], tmp_path: Path) -> None:
    to = tmp_path / "runtime"
    a, b = publish(bundles["A"], to), publish(bundles["B"], to)
    rollback(to)
    c = publish(bundles["C"], to)
    doc = listing(to)
    assert doc["current"] == c and doc["rollback_to"] == a
    history = doc["history"]
    assert isinstance(history, list)
    assert [(e["release"], e["how"], e["from"]) for e in history] == [
        (a, "published", None),
        (b, "published", None),
        (a, "rolled-back-to", b),
        (c, "published", None),
    ]
    assert [e["current"] for e in history] == [False, False, False, True]
    assert [e["rolled_back_from"] for e in history] == [False, True, False, False]
    assert [e["rollback_target"] for e in history] == [False, False, True, False]
    assert all(e["kept"] for e in history)
    assert all(isinstance(e["at"], str) and e["at"].endswith("Z") for e in history)

    r = run_cli("publish", "--to", str(to), "--list")
    assert r.code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["RELEASE", "CURRENT", "SINCE", "(UTC)", "HOW"]
    assert [line.split()[0] for line in lines[1:]] == [a, b, a, c]
    assert [" ".join(line.split()[2:]) for line in lines[1:]] == [
        "published",
        "published rolled back from",
        "rolled back to --rollback returns here",
        "published current",
    ]


def test_list_of_an_empty_target_and_usage_errors(bundles: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "rt").mkdir()
    r = run_cli("publish", "--to", str(tmp_path / "rt"), "--list")
    assert r.code == 0 and r.stdout == "" and "nothing is published" in r.stderr
    assert json.loads(
        run_cli("publish", "--to", str(tmp_path / "rt"), "--list", "--format", "json").stdout
    ) == {
        "current": None,
        "rollback_to": None,
        "history": [],
    }
    for args in (
        [str(bundles["A"]), "--list"],
        ["--rollback", "--list"],
        ["--rollback", "--format", "json"],
    ):
        r = run_cli("publish", "--to", str(tmp_path / "rt"), *args)
        assert r.code == 2 and len(r.stderr.splitlines()) == 1, r.output
    r = run_cli("publish", "--to", str(tmp_path / "missing"), "--list")
    assert r.code == 2 and "no such folder" in r.stderr


def test_pruning_keeps_current_and_the_rollback_target_even_with_keep_0(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    to = tmp_path / "runtime"
    a = publish(bundles["A"], to, "--keep", "0")
    b = publish(bundles["B"], to, "--keep", "0")
    assert sorted(os.listdir(to / "releases")) == sorted([a, b])
    assert rollback(to) == a
    c = publish(bundles["C"], to, "--keep", "0")
    # B was rolled back from: a rollback never returns to it, so it goes; A is where one returns
    assert sorted(os.listdir(to / "releases")) == sorted([a, c])
    assert rollback(to) == a and live(to) == index(bundles["A"])
    assert [e["kept"] for e in listing(to)["history"]] == [True, False, True, True, True]


def test_pruning_prefers_what_further_rollbacks_reach(bundles: dict[str, Path], tmp_path: Path) -> None:
    """--keep 1 after A, B, rollback, C, D: D current, C the target, then A (reached next); B goes."""
    to = tmp_path / "runtime"
    a, b = publish(bundles["A"], to), publish(bundles["B"], to)
    rollback(to)
    c = publish(bundles["C"], to)
    d = publish(bundles["D"], to, "--keep", "1")
    assert sorted(os.listdir(to / "releases")) == sorted([c, d])
    assert b not in os.listdir(to / "releases") and a not in os.listdir(to / "releases")
    e = publish(bundles["A"], to, "--keep", "2")  # the same bundle again is a new release
    assert sorted(os.listdir(to / "releases")) == sorted([c, d, e])


def test_a_rollback_target_removed_by_hand_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    to = tmp_path / "runtime"
    a = publish(bundles["A"], to)
    b = publish(bundles["B"], to)
    for p in sorted((to / "releases" / a).rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (to / "releases" / a).rmdir()
    r = run_cli("publish", "--to", str(to), "--rollback")
    assert r.code == 2 and "no longer kept" in r.stderr and a in r.stderr, r.output
    assert os.path.basename(os.readlink(to / "current")) == b


def test_a_release_made_current_without_a_record_is_found(bundles: dict[str, Path], tmp_path: Path) -> None:
    """A run killed between the swap and the record (or a target published before history was
    kept): what current points to is what is live, and a rollback starts from it."""
    to = tmp_path / "runtime"
    a, b = publish(bundles["A"], to), publish(bundles["B"], to)
    c = publish(bundles["C"], to)
    lines = (to / "history.jsonl").read_text().splitlines(keepends=True)
    (to / "history.jsonl").write_text("".join(lines[:2]))  # C swapped in, never recorded
    history = listing(to)["history"]
    assert [(e["release"], e["how"], e["at"]) for e in history][-1] == (c, "found", None)
    assert rollback(to) == b
    assert rollback(to) == a

    (to / "history.jsonl").unlink()  # published by a version that kept no history
    r = run_cli("publish", "--to", str(to), "--list")
    assert r.code == 0 and "found current" in r.stdout and "unknown" in r.stdout
    r = run_cli("publish", "--to", str(to), "--rollback")
    assert r.code == 2 and "nothing recorded was live before" in r.stderr and "hint:" in r.stderr


def test_a_rollback_killed_after_its_record_is_finished_by_running_it_again(
    bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    to = tmp_path / "runtime"
    a = publish(bundles["A"], to)
    b = publish(bundles["B"], to)

    def killed(to: str, name: str) -> None:
        raise KeyboardInterrupt  # stands in for the kill: recorded, not swapped

    monkeypatch.setattr(pub, "_point", killed)
    with pytest.raises(KeyboardInterrupt):
        pub.rollback(str(to))
    monkeypatch.undo()
    assert os.path.basename(os.readlink(to / "current")) == b
    assert listing(to)["rollback_to"] == a
    assert rollback(to) == a


def test_names_from_the_filesystem_are_escaped(bundles: dict[str, Path], tmp_path: Path) -> None:
    to = tmp_path / "runtime"
    a = publish(bundles["A"], to)
    evil = "x\x1b[2J\n::error::forged\u202e"
    os.rename(to / "releases" / a, to / "releases" / evil)
    os.remove(to / "current")
    os.symlink(f"releases/{evil}", to / "current")
    r = run_cli("publish", "--to", str(to), "--list")
    assert r.code == 0, r.output
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout
    assert len(r.stdout.splitlines()) == 3  # header, A (removed), the evil one found
    assert not any(line.lstrip().startswith("::") for line in r.stdout.splitlines())
    r = run_cli("publish", "--to", str(to), "--list", "--format", "json")
    assert r.stdout.isascii() and json.loads(r.stdout)["current"] == evil
    r = run_cli("publish", "--to", str(to), "--rollback")
    assert r.code == 2 and "\x1b" not in r.stderr and len(r.stderr.splitlines()) == 1


def test_a_killed_publish_leaves_nothing_behind_after_the_next(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    to = tmp_path / "runtime"
    publish(bundles["A"], to)
    incoming = to / "releases" / ".incoming-k1lled_0"
    (incoming / "orgs").mkdir(parents=True)
    (to / ".current.tmp").symlink_to("releases/nowhere")
    (to / ".history.jsonl.k1lled_0.tmp").write_text("{")
    publish(bundles["B"], to)
    assert sorted(p.name for p in to.iterdir()) == ["current", "history.jsonl", "releases"]
    assert all(not n.startswith(".") for n in os.listdir(to / "releases"))


def test_the_incoming_release_is_private_until_complete(
    bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real = shutil.copy2

    def watching(src: str, dst: str) -> object:
        modes.extend(
            stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "rt" / "releases").glob(".incoming-*")
        )
        return real(src, dst)

    monkeypatch.setattr(shutil, "copy2", watching)
    pub.publish(str(bundles["A"]), str(tmp_path / "rt"))
    assert modes and set(modes) == {0o700}


def test_publish_refuses_an_altered_bundle(bundles: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    b = tmp_path / "b"
    shutil.copytree(bundles["A"], b)
    org = next((b / "orgs").iterdir())
    org.write_text(org.read_text() + " ")
    r = run_cli("publish", str(b), "--to", str(tmp_path / "rt"))
    assert r.code == 2 and "sha256" in r.stderr
    assert not (tmp_path / "rt" / "current").exists()


def test_rollback_with_nothing_published(tmp_path: Path) -> None:
    r = run_cli("publish", "--to", str(tmp_path / "rt"), "--rollback")
    assert r.code == 2 and "nothing is published" in r.stderr


@pytest.mark.parametrize(
    "line",
    ["[1]", "{", '{"release": "../elsewhere", "how": "published"}', '{"release": "x", "how": "moved"}'],
)
def test_a_history_changed_by_hand_is_refused_in_one_line(
    bundles: dict[str, Path], tmp_path: Path, line: str
) -> None:
    to = tmp_path / "runtime"
    a = publish(bundles["A"], to)
    publish(bundles["B"], to)
    (to / "history.jsonl").write_text(line + "\n")
    for args in (["--list"], ["--rollback"]):
        r = run_cli("publish", "--to", str(to), *args)
        assert r.code == 2 and "history.jsonl:1:" in r.stderr and len(r.stderr.splitlines()) == 1, r.output
    assert a in os.listdir(to / "releases")
