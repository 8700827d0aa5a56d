"""Reading the deploy manifest (``deploy.json``) of a compiled bundle, for ``plan`` and ``apply``.

The manifest is built on the compile side (bifrost_gitops.deploymanifest, which documents its
shape); reading it needs neither pydantic nor the checks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

from ..bundleformat import DEPLOY_FILE, DEPLOY_FORMAT, DEPLOY_KIND, secrets_mode
from . import DeployError
from .spec import Manifest

if TYPE_CHECKING:
    from ..sops import Keyring

#: The integration Bifrost holds the ownership ledger in (never one of the repository's).
LEDGER = "bifrost-gitops-state"


def missing_org_ids(m: Manifest) -> list[str]:
    """Declared organizations without a Bifrost UUID: plan and apply cannot match them (names are not unique)."""
    return sorted(o["name"] for o in m["organizations"] if not o["id"])


def is_bundle(path: str) -> bool:
    return os.path.isfile(os.path.join(path, DEPLOY_FILE))


def read_bundle(path: str, keyring: Keyring | None = None) -> Manifest:
    """BUNDLE/deploy.json: sealed (decrypted with the runtime key), plain as is; redacted refused."""
    from .. import sops, storable

    file = os.path.join(path, DEPLOY_FILE)
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DeployError(f"{file}: cannot read ({e.strerror})") from None
    try:
        data = sops.loads(raw, "json", file=file)
    except sops.SopsError as e:
        raise DeployError(str(e)) from None
    if "sops" in data:
        data = sops.decrypt_document(data, identities=keyring or sops.default_keyring(), file=file)
    if not isinstance(data, dict) or data.get("kind") != DEPLOY_KIND or data.get("format") != DEPLOY_FORMAT:
        raise DeployError(f"{file}: not a bifrost-gitops deploy manifest (format {DEPLOY_FORMAT})")
    # a sealed value retagged type:bytes (the tag is outside the MAC) decrypts to bytes:
    # refused here, before plan compares it or apply sends anything
    unsendable = storable.unsendable(data)
    if unsendable:
        raise DeployError(f"{file}: {unsendable}: {storable.WHAT}; compile the bundle again")
    if data.get("secrets") == "redacted" or secrets_mode(path) == "redact":
        raise DeployError(
            f"{path}: a redacted bundle holds no secret values, so what to deploy is unknown; "
            "compile with --secrets seal (or plain) for deploy jobs"
        )
    return cast(Manifest, data)  # its kind and format checked: the builder's shape
