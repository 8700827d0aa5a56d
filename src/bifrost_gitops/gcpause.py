"""The cyclic garbage collector paused while a phase builds many small acyclic objects.

Loading, rendering and the recipient check each make hundreds of thousands of objects that
reference counting frees on its own; the cyclic collector would walk all of them, over and over,
for nothing (a third of a load of 10,000 files)."""

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
            gc.enable()
