"""What to deploy: a bundle's deploy.json, or a repository compiled in memory."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from ..errors import EXIT_FINDINGS
from . import DeployError
from .manifest import is_bundle, missing_org_ids, read_bundle
from .spec import Json, Manifest

if TYPE_CHECKING:
    from ..repo import Result


class RepositoryErrors(DeployError):
    """The repository has errors (exit 1); ``result`` carries its diagnostics."""

    exit_code = EXIT_FINDINGS

    def __init__(self, result: Result) -> None:
        super().__init__("the repository has errors (listed above): fix them and plan again")
        self.result = result


def load_desired(source: str) -> Manifest:
    """The deploy manifest of SOURCE (bundle folder or repository); refuses orgs without UUIDs."""
    from .. import sops

    if os.path.isdir(source) and is_bundle(source):
        data = read_bundle(source)
    else:
        from ..bundle import SecretOpener  # a repository is compiled in memory: pydantic, checks
        from ..deploymanifest import manifest
        from ..repo import RepoError, load
        from ..storable import UnstorableSecret

        try:
            result = load(source)
        except RepoError as e:
            raise DeployError(str(e)) from None
        if result.errors:
            raise RepositoryErrors(result)
        try:
            opener = SecretOpener(result.root, result.catalog, sops.default_keyring())
            data = manifest(result.catalog, opener)
        except UnstorableSecret as e:  # K007: findings, like validate --decrypt shows them
            raise RepositoryErrors(dataclasses.replace(result, diagnostics=e.diagnostics)) from None
    missing = missing_org_ids(data)
    if missing:
        raise DeployError(
            "organizations without a Bifrost UUID (add `id:` in organizations.yaml; names are not unique "
            "in Bifrost): " + ", ".join(missing)
        )
    return data


def secret_values(desired: Manifest) -> list[Json]:
    """Every secret value of the manifest (so the client can cut them out of any message)."""
    out: list[Json] = []
    for integ in desired["integrations"]:
        secret_keys = {i["key"] for i in integ["config_schema"] if i["type"] == "secret"}
        out += [v for k, v in integ["defaults"].items() if k in secret_keys]
        for mp in integ["mappings"].values():
            out += [v for k, v in mp["config"].items() if k in secret_keys]
        oauth = integ.get("oauth")
        if oauth and oauth.get("client_secret"):
            out.append(oauth["client_secret"])
    return out
