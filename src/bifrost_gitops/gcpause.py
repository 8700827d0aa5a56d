"""The cyclic garbage collector paused while a phase builds many small acyclic objects.

Loading, rendering and the recipient check each make hundreds of thousands of objects that
reference counting frees on its own; the cyclic collector would walk all of them, over and over,
for nothing (a third of a load of 10,000 files).

Switching it back on is not free either: everything made while it was off is still counted as
young, so the first allocation afterwards would walk all of it (0.25 s after a 10,000-file load,
charged to the load itself). What survived the phase is mostly what the caller keeps, so it is
moved to the oldest generation at once instead (gc.freeze then gc.unfreeze: two list splices,
no walk); a full collection still reaches it, and any cycle among it, in its own time.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Run the body with the cyclic collector off; as it was afterwards (nesting is fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            promote()
            gc.enable()


def promote() -> None:
    """Move every tracked object to the oldest generation without walking any of them. In a
    process that already freezes what it keeps (the console command: cli/process.py), they
    join the frozen ones instead, so nothing frozen before is thawed."""
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    if not frozen_before:
        gc.unfreeze()
