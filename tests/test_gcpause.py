"""The collector paused during a load, and switched back on without walking what the load made."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import gcpause, repo


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations the cyclic collector walks while the test runs (collector on)."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    was_enabled = gc.isenabled()
    gc.collect()
    gc.enable()
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)
        if not was_enabled:
            gc.disable()


def test_a_load_ends_without_walking_what_it_made(
    make_repo: Callable[..., Path], collections: list[int]
) -> None:
    mappings = {
        f"integrations/HaloPSA/mappings/org{i}.yaml": "apiVersion: bifrost-gitops/v1\nkind: Mapping\n"
        f"integration: HaloPSA\norganization: org{i}\nentity_id: '{i}'\nconfig: {{url: https://x.example}}\n"
        for i in range(40)
    }
    root = make_repo(mappings)
    result = repo.load(str(root), repo.LoadOptions(jobs=1, cache=False))
    assert result.files == 44 and gc.isenabled()
    # thousands of objects were made; none of them was walked, and none is left counted as young
    assert collections == []
    assert gc.get_count()[0] < gc.get_threshold()[0]


def test_objects_frozen_before_stay_frozen() -> None:
    keep = [{"kept": [i]} for i in range(100)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gcpause.paused():
            made = [{"made": [i]} for i in range(1000)]
        assert made and gc.get_freeze_count() >= frozen  # none thawed into the collector's reach
    finally:
        gc.unfreeze()
    assert keep and gc.get_freeze_count() == 0


def test_the_collector_is_left_as_it_was() -> None:
    was_enabled = gc.isenabled()
    try:
        gc.disable()
        with gcpause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
        gc.enable()
        with gcpause.paused(), gcpause.paused():
            assert not gc.isenabled()
        assert gc.isenabled()
    finally:
        (gc.enable if was_enabled else gc.disable)()


def test_a_cycle_made_while_paused_is_still_collected() -> None:
    class Node:
        other: object = None

    with gcpause.paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = [id(a)]
        del a, b
    assert any(id(o) == alive[0] for o in gc.get_objects())
    gc.collect()
    assert not any(id(o) == alive[0] and isinstance(o, Node) for o in gc.get_objects())
