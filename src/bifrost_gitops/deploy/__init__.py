"""Deploy to a live Bifrost over its REST API: manifest, client, live state, plan, apply, import.

Data flows one way: manifest (what the repository declares, as Bifrost stores it) + live state
(read with a bounded number of requests) -> plan (ordered operations,
docs/bifrost-api.md#apply-order) -> apply.
"""

from __future__ import annotations

from ..errors import BifrostGitopsError


class DeployError(BifrostGitopsError):
    """A usage or environment error of a deploy command (exit 2). Never holds a secret."""
