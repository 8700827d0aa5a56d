"""A digest of some of this package's own modules: what a stored result was computed by.

Anything kept from one run for the next (the parse cache, compile's kept org files) must be
thrown away when the code that made it changes, by an upgrade or by a developer's edit.
"""

from __future__ import annotations

import functools
import hashlib
import os


@functools.cache
def of(modules: tuple[str, ...]) -> bytes:
    """The sha256 of the package's version and of MODULES' sources (``bifrost_gitops.<name>``)."""
    import bifrost_gitops

    h = hashlib.sha256(bifrost_gitops.__version__.encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for name in modules:
        try:
            with open(os.path.join(here, name + ".py"), "rb") as f:
                h.update(f.read())
        except OSError:  # a zipped or compiled install: the version alone then
            h.update(b"?")
    return h.digest()
