"""Time the tool's processes as an installed copy runs: with its compiled bytecode kept.

pip compiles a package's modules when it installs it. An editable checkout under
PYTHONDONTWRITEBYTECODE=1 (set by some shells and CI images, and on the team's machines) would
instead compile the whole package again in every process, about 0.07 s each, which no user pays.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def keep_bytecode() -> None:
    """Let the child processes of this benchmark keep .pyc files (under benchmarks/.work/)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", os.path.join(HERE, ".work", "pycache"))
