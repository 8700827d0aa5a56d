"""The steps plan, apply and import share: connect (version gate), read live, plan."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

from . import DeployError
from . import live as live_state
from .client import ApiError, Client
from .credentials import load_credentials
from .plan import Options, Plan, make_plan
from .plan.batch import batch_size as env_batch_size
from .source import load_desired, secret_values
from .spec import Manifest

if TYPE_CHECKING:
    from .importer import Imported


def connect(url: str | None, credentials: str | None, concurrency: int = 8, **kw: Any) -> Client:
    client = Client(load_credentials(url, credentials), concurrency=concurrency, **kw)
    try:
        client.check_version()
    except BaseException:
        client.close()
        raise
    return client


def plan_for(client: Client, desired: Manifest, opts: Options) -> Plan:
    """Read the live state (counting requests) and diff it against DESIRED."""
    return read_and_plan(client, desired, opts)[1]


def read_and_plan(
    client: Client, desired: Manifest, opts: Options, batch_size: int | None = None
) -> tuple[live_state.Live, Plan]:
    """The live state read and the plan made from it (a saved plan fingerprints both);
    BATCH_SIZE (default: from the environment) caps the mapping creates per batch request."""
    size = env_batch_size(os.environ) if batch_size is None else batch_size
    client.add_sensitive(secret_values(desired))  # text and numbers; booleans are skipped
    state = live_state.read(client, desired["integrations"], include_ledger_managed=opts.prune)
    return state, make_plan(desired, state, opts, client.requests, size)  # the version check included


def _live_error(client: Client, e: Exception) -> DeployError:
    """A failure while reading Bifrost as one line naming that step, with every secret value
    and token the client knows cut out (a server may quote them back)."""
    return DeployError(f"cannot read the live state: {client.scrub(str(e))}")


class Prepared(NamedTuple):
    client: Client
    plan: Plan
    desired: Manifest
    live: live_state.Live


def prepare(
    source: str, url: str | None, credentials: str | None, concurrency: int, opts: Options
) -> Prepared:
    """What plan and apply start with: a connected client, the plan, the inputs it came from.

    Raises RepositoryErrors (exit 1) when SOURCE has errors, else a one-line DeployError (exit 2).
    """
    desired = load_desired(source)
    size = env_batch_size(os.environ)  # a malformed value stops here, before any request
    client = connect(url, credentials, concurrency)
    try:
        state, p = read_and_plan(client, desired, opts, size)
        return Prepared(client, p, desired, state)
    except (ApiError, DeployError) as e:  # BadReply (a reply of the wrong shape) is a DeployError
        client.close()
        raise _live_error(client, e) from None
    except BaseException:
        client.close()
        raise


def import_to(client: Client, out_dir: str, age: list[str]) -> Imported:
    """``import_live``, whose failures become one line with secrets and tokens cut out."""
    from ..sops import SopsError
    from .importer import import_live
    from .replies import BadReply

    try:
        return import_live(client, out_dir, age)
    except (ApiError, BadReply) as e:
        raise _live_error(client, e) from None
    except (DeployError, SopsError) as e:  # writing the repository: sops, .sops.yaml, the folder
        raise DeployError(client.scrub(str(e))) from None


__all__ = [
    "ApiError",
    "Client",
    "Options",
    "Plan",
    "connect",
    "import_to",
    "load_desired",
    "plan_for",
    "prepare",
    "read_and_plan",
]
