"""--jobs: workers read their own files and look them up in the cache; whatever happens to a file
or a worker on the way, the findings are those of one job, in the same order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import cache, parallel, perfile, repo
from support import git
from test_cache import BROKEN, cold, validate

GONE = "aaa/gone.yaml"  # sorts first: the first chunk, always a worker's


@pytest.fixture
def analysed_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Workers for any batch; every file parsed, in whichever process, leaves `PID-path` here."""
    log = tmp_path / "analysed"
    log.mkdir()
    real = perfile.analyse

    def noted(rel: str, content: bytes, pack: bool = True) -> Any:
        (log / f"{os.getpid()}-{rel.replace('/', '__')}").touch()
        return real(rel, content, pack)

    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(perfile, "analyse", noted)
    yield log


def parsed_by(log: Path) -> dict[str, set[str]]:
    """Each process's files, by 'main' or 'worker'."""
    out: dict[str, set[str]] = {"main": set(), "worker": set()}
    for p in log.iterdir():
        pid, rel = p.name.split("-", 1)
        out["main" if int(pid) == os.getpid() else "worker"].add(rel.replace("__", "/"))
    return out


def test_both_processes_parse_and_each_file_once(make_repo: Callable[..., Path], analysed_in: Path) -> None:
    root = make_repo(BROKEN)
    expected = cold(root)
    for p in analysed_in.iterdir():
        p.unlink()
    result = repo.load(str(root), repo.LoadOptions(jobs=2, cache=False))
    by = parsed_by(analysed_in)
    assert by["worker"], "no worker parsed a file"
    assert not by["main"] & by["worker"]
    assert sorted(by["main"] | by["worker"]) == sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*.yaml")
    )
    assert validate(root, "--no-cache", "--jobs", "2") == expected
    assert result.files == len(by["main"] | by["worker"])


def test_a_file_gone_before_a_worker_reads_it_is_reported_as_with_one_job(
    make_repo: Callable[..., Path], analysed_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(BROKEN)
    listed = repo.WorkTree.files

    def with_a_ghost(self: repo.WorkTree, exclude: list[str]) -> tuple[list[str], list[Any]]:
        found, diags = listed(self, exclude)
        return [GONE, *found], diags  # listed, then deleted before anyone read it

    monkeypatch.setattr(repo.WorkTree, "files", with_a_ghost)
    one = validate(root, "--no-cache", "--jobs", "1")
    assert f"{GONE}:1:1: Y007 cannot read file: No such file or directory" in one[0].stdout
    for p in analysed_in.iterdir():
        p.unlink()
    assert validate(root, "--no-cache", "--jobs", "2") == one
    assert validate(root, "--jobs", "2") == one  # the cache on: a miss that is never stored
    assert validate(root, "--jobs", "2") == one
    assert parsed_by(analysed_in)["worker"], "no worker ran"


def die(read: parallel.Read | None, store: object, chunk: list[parallel.Item]) -> bytes:
    Path(os.environ["WORKER_RAN"]).touch()
    os._exit(3)  # a worker killed in the middle of its chunk (out of memory, a signal)


def fail(read: parallel.Read | None, store: object, chunk: list[parallel.Item]) -> bytes:
    Path(os.environ["WORKER_RAN"]).touch()
    raise MemoryError  # a worker that cannot go on


@pytest.mark.parametrize("work", [die, fail])
def test_a_worker_that_dies_leaves_its_files_to_this_process(
    make_repo: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    work: Callable[..., bytes],
    tmp_path: Path,
) -> None:
    root = make_repo(BROKEN)
    expected = cold(root)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "_work", work)
    ran = tmp_path / "a worker ran"
    monkeypatch.setenv("WORKER_RAN", str(ran))
    assert validate(root, "--no-cache", "--jobs", "2") == expected
    assert ran.exists(), "no worker was forked"
    assert validate(root, "--jobs", "3") == expected  # filling the cache
    assert validate(root, "--jobs", "3") == expected
    assert "Traceback" not in capfd.readouterr().err  # not even from a worker


def test_workers_find_cached_files_without_the_index(
    make_repo: Callable[..., Path], analysed_in: Path
) -> None:
    """A fresh checkout with a restored cache (CI): no file's stat is known, its content is."""
    root = make_repo(BROKEN)
    expected = cold(root)
    assert validate(root, "--jobs", "2") == expected
    for index in Path(cache.base_dir()).rglob(cache.INDEX):
        index.unlink()
    for p in analysed_in.iterdir():
        p.unlink()
    assert validate(root, "--jobs", "2") == expected
    assert parsed_by(analysed_in) == {"main": set(), "worker": set()}, "cached files parsed again"


def test_a_git_revision_with_two_jobs_matches_one(make_repo: Callable[..., Path], analysed_in: Path) -> None:
    root = make_repo(BROKEN)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    for p in root.rglob("*.yaml"):
        p.write_text("not: [what, git, holds\n")  # the work tree is not what is read
    one = validate(root, "--rev", "HEAD", "--no-cache", "--jobs", "1")
    assert one[0].code == 1 and "S001" in one[0].stdout
    assert validate(root, "--rev", "HEAD", "--no-cache", "--jobs", "2") == one
    assert validate(root, "--staged", "--jobs", "2") == one
    assert parsed_by(analysed_in)["worker"], "no worker ran"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_size_limit_holds_when_workers_read(
    make_repo: Callable[..., Path], analysed_in: Path, jobs: str
) -> None:
    from bifrost_gitops import loader

    head = "apiVersion: bifrost-gitops/v1\nkind: Organizations\norganizations: []\n# "
    root = make_repo(
        {
            "aaa/big.yaml": head + "x" * (loader.MAX_BYTES - len(head)) + "\n",  # one byte over
            "aaa/fits.yaml": head + "x" * (loader.MAX_BYTES - len(head) - 1) + "\n",
            "aaa/empty.yaml": "",
        }
    )
    assert (root / "aaa/fits.yaml").stat().st_size == loader.MAX_BYTES
    run = validate(root, "--no-cache", "--jobs", jobs)[0]
    assert run.stdout.startswith("aaa/big.yaml:1:1: Y004 file is larger than 1024 KiB\n"), run
    assert run.stdout.endswith("7 files checked: 1 error, 0 warnings\n"), run  # fits.yaml fits
